# The program README's tracer examples trace (examples/spec.json lists its inputs).


def f(xs, k=2):
    out = []
    for x in xs:
        out.append(x * k)
    return out
