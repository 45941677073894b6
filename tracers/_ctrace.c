/* tracegym.tracers._ctrace: the C recorder behind tracegym.tracers.trace (CPython 3.11).
 *
 * A C-level trace function (PyEval_SetTrace): no Python frame per event. Per call/line event it
 * takes the frame's locals (PyFrame_GetLocals) and keeps, per value, either the object itself
 * (an exact immutable atom: int, float, bool, None, complex, bytes, or a small tuple/frozenset
 * of atoms; repr'd after the call, once per object) or its repr taken now (anything else, as an
 * eager repr-every-local tracer would; an exact str is repr'd now through a cache keyed by the
 * string). Reprs run inside the trace function, where the interpreter does not trace, so a
 * __repr__ calling traced code is not traced. Return and exception events repr their argument
 * at once. Recorder.build() turns the events into cwm.Frame tuples (reprs, truncation, sources).
 *
 * Semantics mirror trace.py's Python recorder: the same scope predicate (called once per code
 * object), depth limit, event limit (then tracing stops for the rest of the call), the previous
 * trace function restored on uninstall, hidden comprehension locals (".0") skipped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
static struct PyModuleDef ctrace_module = {PyModuleDef_HEAD_INIT, "_ctrace", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__ctrace(void) {
    PyErr_SetString(PyExc_ImportError, "tracegym.tracers._ctrace supports CPython 3.11 only");
    return NULL;
}
#else

/* ---------------------------------------------------------------- pointer-keyed table */
typedef struct { PyObject *key; PyObject *val; } slot_t;
typedef struct { slot_t *slots; size_t cap; size_t used; int weak_keys; } ptab_t;

static inline size_t ptab_hash(PyObject *k) {
    size_t x = (size_t)k >> 4;
    x *= (size_t)0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 31);
}

static PyObject *ptab_get(ptab_t *t, PyObject *k) {
    if (t->cap == 0) return NULL;
    size_t m = t->cap - 1, i = ptab_hash(k) & m;
    for (;;) {
        slot_t *s = &t->slots[i];
        if (s->key == k) return s->val;
        if (s->key == NULL) return NULL;
        i = (i + 1) & m;
    }
}

static int ptab_insert_raw(slot_t *slots, size_t cap, PyObject *k, PyObject *v) {
    size_t m = cap - 1, i = ptab_hash(k) & m;
    while (slots[i].key != NULL) i = (i + 1) & m;
    slots[i].key = k;
    slots[i].val = v;
    return 0;
}

/* Holds new references to k (unless weak_keys: then only its address is a key) and v. */
static int ptab_put(ptab_t *t, PyObject *k, PyObject *v) {
    if ((t->used + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        slot_t *ns = PyMem_Calloc(ncap, sizeof(slot_t));
        if (ns == NULL) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].key) ptab_insert_raw(ns, ncap, t->slots[i].key, t->slots[i].val);
        PyMem_Free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    if (!t->weak_keys) Py_INCREF(k);
    Py_INCREF(v);
    ptab_insert_raw(t->slots, t->cap, k, v);
    t->used++;
    return 0;
}

/* Replaces k's value when k is a key already. */
static int ptab_set(ptab_t *t, PyObject *k, PyObject *v) {
    if (t->cap) {
        size_t m = t->cap - 1, i = ptab_hash(k) & m;
        for (;;) {
            slot_t *s = &t->slots[i];
            if (s->key == k) {
                Py_INCREF(v);
                Py_SETREF(s->val, v);
                return 0;
            }
            if (s->key == NULL) break;
            i = (i + 1) & m;
        }
    }
    return ptab_put(t, k, v);
}

static void ptab_clear(ptab_t *t) {
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].key) {
            if (!t->weak_keys) Py_DECREF(t->slots[i].key);
            Py_DECREF(t->slots[i].val);
        }
    }
    PyMem_Free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

/* ---------------------------------------------------------------------- repr helpers */
/* repr(v), or "<repr failed: ExcType>" when __repr__ raises an Exception (a BaseException that
 * is not an Exception propagates: NULL), cut at limit chars plus the marker. */
static PyObject *safe_repr_cut(PyObject *v, Py_ssize_t limit, PyObject *marker) {
    PyObject *r = PyObject_Repr(v);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return NULL;
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        PyObject *tp = ev ? (PyObject *)Py_TYPE(ev) : et;
        PyObject *name = PyObject_GetAttrString(tp, "__name__");
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        if (name == NULL) return NULL;
        r = PyUnicode_FromFormat("<repr failed: %S>", name);
        Py_DECREF(name);
        if (r == NULL) return NULL;
    }
    else if (!PyUnicode_CheckExact(r)) { /* a str subclass: keep the text only */
        PyObject *s = PyUnicode_FromObject(r);
        Py_DECREF(r);
        if (s == NULL) return NULL;
        if (!PyUnicode_CheckExact(s)) {
            PyObject *c = PyUnicode_Substring(s, 0, PyUnicode_GET_LENGTH(s));
            Py_DECREF(s);
            s = c;
            if (s == NULL) return NULL;
        }
        r = s;
    }
    if (PyUnicode_GET_LENGTH(r) > limit) {
        PyObject *head = PyUnicode_Substring(r, 0, limit);
        Py_DECREF(r);
        if (head == NULL) return NULL;
        r = PyUnicode_Concat(head, marker);
        Py_DECREF(head);
    }
    return r;
}

/* An exact immutable value whose repr later equals its repr now (no user code, no mutation). */
static int is_atom(PyObject *v, int depth) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyLong_Type || t == &PyFloat_Type || t == &PyUnicode_Type || t == &PyBool_Type ||
        v == Py_None || t == &PyBytes_Type || t == &PyComplex_Type)
        return 1;
    if (depth >= 3) return 0;
    if (t == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(v);
        if (n > 16) return 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!is_atom(PyTuple_GET_ITEM(v, i), depth + 1)) return 0;
        return 1;
    }
    if (t == &PyFrozenSet_Type) {
        if (PySet_GET_SIZE(v) > 16) return 0;
        Py_ssize_t pos = 0;
        PyObject *item;
        Py_hash_t h;
        while (_PySet_NextEntry(v, &pos, &item, &h))
            if (!is_atom(item, depth + 1)) return 0;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ container snapshots
 * A builtin container (exact list, tuple, dict, set, frozenset) holding only builtin containers
 * and atoms is "pure": its repr runs no user code and depends only on its content. Its
 * snapshot is a tuple tree: (type, child, ...) for a list/tuple/set/frozenset, (dict, key,
 * value, ...) for a dict, the atom itself (a reference: its identity) for an atom. A container
 * whose content is the same as a snapshot's (same types and sizes, identical atoms, in the same
 * iteration order) has the same repr, so the repr taken with that snapshot is reused: an
 * unchanged list is compared, not repr'd, at each event. The cache is keyed by the container's
 * address only, as a hint: the comparison, not the address, decides. */
#define SNAP_DEPTH 8
#define SNAP_MAX_ENTRIES 200000

static inline int is_flat_atom(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type || t == &PyBool_Type ||
           v == Py_None || t == &PyBytes_Type || t == &PyComplex_Type;
}

static inline int is_container(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyList_Type || t == &PyTuple_Type || t == &PyDict_Type || t == &PySet_Type ||
           t == &PyFrozenSet_Type;
}

static int has_big_int(PyObject *v);

/* 1: pure, *out a new snapshot; 0: not pure (or changed while walked); -1: error.
 * *big is set when an int might pass the str() digit limit (the repr is then taken whole). */
static int snap_make(PyObject *v, int depth, PyObject **out, int *big) {
    if (is_flat_atom(v)) {
        if (Py_TYPE(v) == &PyLong_Type && Py_ABS(Py_SIZE(v)) > 60) *big = 1;
        *out = Py_NewRef(v);
        return 1;
    }
    if (depth >= SNAP_DEPTH || !is_container(v)) return 0;
    if (Py_TYPE(v) == &PyTuple_Type && is_atom(v, 0)) { /* by identity, like any atom */
        if (has_big_int(v)) *big = 1;
        *out = Py_NewRef(v);
        return 1;
    }
    PyTypeObject *t = Py_TYPE(v);
    PyObject *node = NULL, *c;
    int rc;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = Py_SIZE(v);
        node = PyTuple_New(n + 1);
        if (node == NULL) return -1;
        PyTuple_SET_ITEM(node, 0, Py_NewRef((PyObject *)t));
        for (Py_ssize_t i = 0; i < n; i++) {
            if (Py_SIZE(v) != n) { rc = 0; goto bad; } /* a finalizer changed it */
            PyObject *item = t == &PyList_Type ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
            Py_INCREF(item);
            rc = snap_make(item, depth + 1, &c, big);
            Py_DECREF(item);
            if (rc <= 0) goto bad;
            PyTuple_SET_ITEM(node, i + 1, c);
        }
        if (Py_SIZE(v) != n) { rc = 0; goto bad; }
    }
    else if (t == &PyDict_Type) {
        Py_ssize_t n = PyDict_GET_SIZE(v), pos = 0, i = 1;
        PyObject *key, *val;
        node = PyTuple_New(2 * n + 1);
        if (node == NULL) return -1;
        PyTuple_SET_ITEM(node, 0, Py_NewRef((PyObject *)t));
        while (PyDict_Next(v, &pos, &key, &val)) {
            if (i > 2 * n || PyDict_GET_SIZE(v) != n || !is_atom(key, 0)) { rc = 0; goto bad; }
            if (has_big_int(key)) *big = 1;
            PyTuple_SET_ITEM(node, i, Py_NewRef(key));
            Py_INCREF(val);
            rc = snap_make(val, depth + 1, &c, big);
            Py_DECREF(val);
            if (rc <= 0) { i++; goto bad; }
            PyTuple_SET_ITEM(node, i + 1, c);
            i += 2;
        }
        if (i != 2 * n + 1 || PyDict_GET_SIZE(v) != n) { rc = 0; goto bad; }
    }
    else { /* set, frozenset: hashable items */
        Py_ssize_t n = PySet_GET_SIZE(v), pos = 0, i = 1;
        PyObject *item;
        Py_hash_t h;
        node = PyTuple_New(n + 1);
        if (node == NULL) return -1;
        PyTuple_SET_ITEM(node, 0, Py_NewRef((PyObject *)t));
        while (_PySet_NextEntry(v, &pos, &item, &h)) {
            if (i > n || !is_atom(item, 0)) { rc = 0; goto bad; }
            if (has_big_int(item)) *big = 1;
            PyTuple_SET_ITEM(node, i++, Py_NewRef(item));
        }
        if (i != n + 1) { rc = 0; goto bad; }
    }
    *out = node;
    return 1;
bad:
    Py_XDECREF(node); /* unset items are NULL: tuple dealloc skips them */
    return rc;
}

/* An int whose str() could pass sys.get_int_max_str_digits() (>= 640): more than 60 digits
 * of 30 bits (542 decimal digits) says "maybe", and the repr is then taken whole. */
static int has_big_int(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyLong_Type) return Py_ABS(Py_SIZE(v)) > 60;
    if (t == &PyComplex_Type || t == &PyFloat_Type || t == &PyUnicode_Type ||
        t == &PyBytes_Type || t == &PyBool_Type || v == Py_None)
        return 0;
    if (t == &PyTuple_Type) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++)
            if (has_big_int(PyTuple_GET_ITEM(v, i))) return 1;
        return 0;
    }
    if (t == &PyFrozenSet_Type) {
        Py_ssize_t pos = 0;
        PyObject *item;
        Py_hash_t h;
        while (_PySet_NextEntry(v, &pos, &item, &h))
            if (has_big_int(item)) return 1;
        return 0;
    }
    return 1;
}

static inline int is_node(PyObject *s) {
    return Py_TYPE(s) == &PyTuple_Type && PyTuple_GET_SIZE(s) > 0 &&
           PyType_Check(PyTuple_GET_ITEM(s, 0));
}

/* The repr of a snapshot, written until it passes `limit` characters (then 1 is returned: the
 * text so far is the full repr's prefix). Formats as list/tuple/dict/set/frozenset's repr do;
 * the atoms are repr'd by their own repr. 0: complete; -1: error. */
static int snap_repr(PyObject *s, _PyUnicodeWriter *w, Py_ssize_t limit) {
#define PUT(lit) do { if (_PyUnicodeWriter_WriteASCIIString(w, lit, sizeof(lit) - 1) < 0) return -1; } while (0)
    if (!is_node(s)) {
        PyObject *r = PyObject_Repr(s);
        if (r == NULL) return -1;
        int rc = _PyUnicodeWriter_WriteStr(w, r);
        Py_DECREF(r);
        if (rc < 0) return -1;
        return w->pos > limit;
    }
    PyObject *t = PyTuple_GET_ITEM(s, 0);
    Py_ssize_t n = PyTuple_GET_SIZE(s) - 1, i;
    int rc;
    if (t == (PyObject *)&PyDict_Type) {
        PUT("{");
        for (i = 1; i <= n; i += 2) {
            if (i > 1) PUT(", ");
            if ((rc = snap_repr(PyTuple_GET_ITEM(s, i), w, limit)) != 0) return rc;
            PUT(": ");
            if ((rc = snap_repr(PyTuple_GET_ITEM(s, i + 1), w, limit)) != 0) return rc;
        }
        PUT("}");
        return w->pos > limit;
    }
    if (t == (PyObject *)&PySet_Type || t == (PyObject *)&PyFrozenSet_Type) {
        int frozen = t == (PyObject *)&PyFrozenSet_Type;
        if (n == 0) {
            if (frozen) PUT("frozenset()"); else PUT("set()");
            return w->pos > limit;
        }
        if (frozen) PUT("frozenset({")  ; else PUT("{");
    }
    else if (t == (PyObject *)&PyList_Type) PUT("[");
    else PUT("(");
    if (w->pos > limit) return 1;
    for (i = 1; i <= n; i++) {
        if (i > 1) PUT(", ");
        if ((rc = snap_repr(PyTuple_GET_ITEM(s, i), w, limit)) != 0) return rc;
    }
    if (t == (PyObject *)&PyList_Type) PUT("]");
    else if (t == (PyObject *)&PyTuple_Type) { if (n == 1) PUT(",)"); else PUT(")"); }
    else if (t == (PyObject *)&PySet_Type) PUT("}");
    else PUT("})");
    return w->pos > limit;
#undef PUT
}

/* repr(v) cut at limit (+ marker), from v's pure snapshot, stopping once past the limit. */
static PyObject *snap_repr_cut(PyObject *snap, Py_ssize_t limit, PyObject *marker) {
    _PyUnicodeWriter w;
    _PyUnicodeWriter_Init(&w);
    int rc = snap_repr(snap, &w, limit);
    if (rc < 0) { _PyUnicodeWriter_Dealloc(&w); return NULL; }
    PyObject *r = _PyUnicodeWriter_Finish(&w);
    if (r == NULL || PyUnicode_GET_LENGTH(r) <= limit) return r;
    PyObject *head = PyUnicode_Substring(r, 0, limit);
    Py_DECREF(r);
    if (head == NULL) return NULL;
    r = PyUnicode_Concat(head, marker);
    Py_DECREF(head);
    return r;
}

/* 1: v's content is the snapshot's; 0: it may differ. Runs no Python code. */
static int snap_same(PyObject *v, PyObject *s) {
    if (v == s) return 1;
    if (Py_TYPE(s) != &PyTuple_Type || PyTuple_GET_SIZE(s) == 0 ||
        PyTuple_GET_ITEM(s, 0) != (PyObject *)Py_TYPE(v))
        return 0;
    PyTypeObject *t = Py_TYPE(v);
    Py_ssize_t ns = PyTuple_GET_SIZE(s) - 1;
    if (t == &PyList_Type || t == &PyTuple_Type) {
        if (Py_SIZE(v) != ns) return 0;
        PyObject **items = t == &PyList_Type ? ((PyListObject *)v)->ob_item
                                             : ((PyTupleObject *)v)->ob_item;
        for (Py_ssize_t i = 0; i < ns; i++) {
            PyObject *a = items[i], *b = PyTuple_GET_ITEM(s, i + 1);
            if (a != b && !snap_same(a, b)) return 0;
        }
        return 1;
    }
    if (t == &PyDict_Type) {
        if (2 * PyDict_GET_SIZE(v) != ns) return 0;
        Py_ssize_t pos = 0, i = 1;
        PyObject *key, *val;
        while (PyDict_Next(v, &pos, &key, &val)) {
            if (i > ns || key != PyTuple_GET_ITEM(s, i)) return 0;
            PyObject *b = PyTuple_GET_ITEM(s, i + 1);
            if (val != b && !snap_same(val, b)) return 0;
            i += 2;
        }
        return i == ns + 1;
    }
    if (t == &PySet_Type || t == &PyFrozenSet_Type) {
        if (PySet_GET_SIZE(v) != ns) return 0;
        Py_ssize_t pos = 0, i = 1;
        PyObject *item;
        Py_hash_t h;
        while (_PySet_NextEntry(v, &pos, &item, &h)) {
            if (i > ns || item != PyTuple_GET_ITEM(s, i)) return 0;
            i++;
        }
        return i == ns + 1;
    }
    return 0;
}

/* ----------------------------------------------------------------------------- recorder */
enum { EV_CALL = 0, EV_LINE = 1, EV_RETURN = 2, EV_EXCEPTION = 3 };

typedef struct {
    PyObject_HEAD
    PyObject *events;     /* list of raw event tuples */
    PyObject *decide;     /* code -> bool */
    PyObject *stack;      /* list of the traced frames, innermost last */
    PyObject *str_cache;  /* exact str -> its cut repr */
    PyObject *marker;     /* TRUNCATED */
    ptab_t wanted;        /* code -> Py_True / Py_False */
    ptab_t snaps;         /* container address -> (snapshot, repr) */
    PyObject *last_names; /* the names tuple of the last call/line event */
    Py_ssize_t max_depth, left, limit;
    int stopped, truncated, installed;
    void *raised_frame;   /* the frame of the last exception event, until it runs on */
    int raised_lasti;     /* and its f_lasti then */
    Py_tracefunc prev_func;
    PyObject *prev_obj;
    char retops[256];
} Recorder;

static PyObject *kind_obj[4];
static PyObject *str_f_trace;

static void rec_stop(Recorder *r) {
    r->stopped = 1;
    r->left = 0;
    if (r->installed) PyEval_SetTrace(NULL, NULL);
}

/* A call or line event: (kind, code, lineno, names, values, depth). */
static int record_locals(Recorder *r, PyFrameObject *frame, PyObject *code, int kind,
                         Py_ssize_t depth) {
    PyObject *loc = PyFrame_GetLocals(frame);
    if (loc == NULL) return -1;
    if (!PyDict_Check(loc)) { /* a class body's namespace from __prepare__: any mapping */
        PyObject *d = PyDict_New();
        if (d == NULL || PyDict_Merge(d, loc, 1) < 0) { Py_XDECREF(d); Py_DECREF(loc); return -1; }
        Py_SETREF(loc, d);
    }
    Py_ssize_t n = PyDict_GET_SIZE(loc), pos = 0, k = 0;
    /* The names are those of the previous event, as a rule: that tuple is shared then. */
    PyObject *last = r->last_names, *names = NULL, *vals = PyTuple_New(n), *key, *val;
    int same = last != NULL;
    if (vals == NULL) goto fail;
    while (k < n && PyDict_Next(loc, &pos, &key, &val)) {
        if (PyUnicode_Check(key) && PyUnicode_GET_LENGTH(key) > 0 &&
            PyUnicode_READ_CHAR(key, 0) == '.')
            continue; /* hidden comprehension local (".0"): an iterator's address */
        if (same && (k >= PyTuple_GET_SIZE(last) || PyTuple_GET_ITEM(last, k) != key)) same = 0;
        Py_INCREF(val);
        PyTuple_SET_ITEM(vals, k, val);
        k++;
    }
    if (same && k == PyTuple_GET_SIZE(last)) {
        names = Py_NewRef(last);
    }
    else {
        names = PyTuple_New(k);
        if (names == NULL) goto fail;
        Py_ssize_t j = 0;
        pos = 0;
        while (j < k && PyDict_Next(loc, &pos, &key, &val)) {
            if (PyUnicode_Check(key) && PyUnicode_GET_LENGTH(key) > 0 &&
                PyUnicode_READ_CHAR(key, 0) == '.')
                continue;
            PyTuple_SET_ITEM(names, j++, Py_NewRef(key));
        }
        Py_XSETREF(r->last_names, Py_NewRef(names));
    }
    Py_CLEAR(loc);
    if (k < n && _PyTuple_Resize(&vals, k) < 0) goto fail;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *v = PyTuple_GET_ITEM(vals, i), *rep;
        if (PyUnicode_CheckExact(v)) {
            rep = PyDict_GetItemWithError(r->str_cache, v);
            if (rep != NULL) {
                Py_INCREF(rep);
            }
            else {
                if (PyErr_Occurred()) goto fail;
                rep = safe_repr_cut(v, r->limit, r->marker);
                if (rep == NULL || PyDict_SetItem(r->str_cache, v, rep) < 0) { Py_XDECREF(rep); goto fail; }
            }
        }
        else if (is_atom(v, 0)) {
            continue; /* kept by reference, repr'd by build() */
        }
        else if (is_container(v)) {
            PyObject *entry = ptab_get(&r->snaps, v), *snap;
            if (entry != NULL && snap_same(v, PyTuple_GET_ITEM(entry, 0))) {
                rep = Py_NewRef(PyTuple_GET_ITEM(entry, 1));
            }
            else {
                int big = 0, pure = snap_make(v, 0, &snap, &big);
                if (pure < 0) goto fail;
                rep = pure && !big ? snap_repr_cut(snap, r->limit, r->marker)
                                   : safe_repr_cut(v, r->limit, r->marker);
                if (rep == NULL) { if (pure) Py_DECREF(snap); goto fail; }
                if (pure) {
                    int rc = 0;
                    if (entry != NULL || r->snaps.used < SNAP_MAX_ENTRIES) {
                        PyObject *e = PyTuple_Pack(2, snap, rep);
                        rc = e ? ptab_set(&r->snaps, v, e) : -1;
                        Py_XDECREF(e);
                    }
                    Py_DECREF(snap);
                    if (rc < 0) { Py_DECREF(rep); goto fail; }
                }
            }
        }
        else {
            rep = safe_repr_cut(v, r->limit, r->marker);
            if (rep == NULL) goto fail;
        }
        PyTuple_SET_ITEM(vals, i, rep); /* a str in values is a finished repr */
        Py_DECREF(v);
    }
    int lineno = PyFrame_GetLineNumber(frame);
    PyObject *ev = PyTuple_New(6);
    if (ev == NULL) goto fail;
    Py_INCREF(kind_obj[kind]);
    PyTuple_SET_ITEM(ev, 0, kind_obj[kind]);
    Py_INCREF(code);
    PyTuple_SET_ITEM(ev, 1, code);
    PyObject *ln = lineno < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(lineno);
    PyObject *dp = PyLong_FromSsize_t(depth);
    if (ln == NULL || dp == NULL) { Py_XDECREF(ln); Py_XDECREF(dp); Py_DECREF(ev); goto fail; }
    PyTuple_SET_ITEM(ev, 2, ln);
    PyTuple_SET_ITEM(ev, 3, names);
    PyTuple_SET_ITEM(ev, 4, vals);
    PyTuple_SET_ITEM(ev, 5, dp);
    int rc = PyList_Append(r->events, ev);
    Py_DECREF(ev);
    return rc;
fail:
    Py_XDECREF(loc);
    Py_XDECREF(names);
    Py_XDECREF(vals);
    return -1;
}

/* A return or exception event: (kind, code, lineno, None, repr, depth). */
static int record_arg(Recorder *r, PyFrameObject *frame, PyObject *code, int kind,
                      PyObject *arg, Py_ssize_t depth) {
    PyObject *rep = safe_repr_cut(arg, r->limit, r->marker);
    if (rep == NULL) return -1;
    int lineno = PyFrame_GetLineNumber(frame);
    PyObject *ln = lineno < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(lineno);
    PyObject *dp = PyLong_FromSsize_t(depth);
    PyObject *ev = (ln && dp) ? PyTuple_Pack(6, kind_obj[kind], code, ln, Py_None, rep, dp) : NULL;
    Py_XDECREF(ln);
    Py_XDECREF(dp);
    Py_DECREF(rep);
    if (ev == NULL) return -1;
    int rc = PyList_Append(r->events, ev);
    Py_DECREF(ev);
    return rc;
}

static int on_call(Recorder *r, PyFrameObject *frame) {
    PyObject *code = (PyObject *)PyFrame_GetCode(frame);
    PyObject *want = ptab_get(&r->wanted, code);
    if (want == NULL) {
        PyObject *res = PyObject_CallOneArg(r->decide, code);
        int t = res ? PyObject_IsTrue(res) : -1;
        Py_XDECREF(res);
        if (t < 0 || ptab_put(&r->wanted, code, t ? Py_True : Py_False) < 0) {
            Py_DECREF(code);
            return -1;
        }
        want = t ? Py_True : Py_False;
    }
    int rc = 0;
    Py_ssize_t depth = PyList_GET_SIZE(r->stack);
    if (want == Py_True && depth <= r->max_depth) {
        if (r->left <= 0) {
            r->truncated = 1;
            rec_stop(r);
        }
        else {
            r->left--;
            rc = PyList_Append(r->stack, (PyObject *)frame);
            /* f_trace too, as settrace would: should the program hand sys.gettrace()'s value
             * (this recorder) back to sys.settrace, this frame's events still come here. */
            if (rc == 0) rc = PyObject_SetAttr((PyObject *)frame, str_f_trace, (PyObject *)r);
            if (rc == 0) rc = record_locals(r, frame, code, EV_CALL, depth);
        }
    }
    Py_DECREF(code);
    return rc;
}

static int trace_cb(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    Recorder *r = (Recorder *)obj;
    if (r->stopped) return 0;
    int rc = 0;
    if (what == PyTrace_CALL) {
        r->raised_frame = NULL;
        rc = on_call(r, frame);
    }
    else {
        Py_ssize_t n = PyList_GET_SIZE(r->stack);
        if (n == 0 || PyList_GET_ITEM(r->stack, n - 1) != (PyObject *)frame) return 0;
        if (what != PyTrace_LINE && what != PyTrace_RETURN && what != PyTrace_EXCEPTION) return 0;
        if (r->left <= 0) {
            r->truncated = 1;
            rec_stop(r);
            return 0;
        }
        r->left--;
        PyObject *code = (PyObject *)PyFrame_GetCode(frame);
        if (what == PyTrace_LINE) {
            r->raised_frame = NULL;
            rc = record_locals(r, frame, code, EV_LINE, n - 1);
        }
        else if (what == PyTrace_RETURN) {
            /* also sent when an exception unwinds the frame: then the opcode at f_lasti is no
             * return or yield, and the frame's last frame is the exception (not recorded). */
            int lasti = PyFrame_GetLasti(frame), real = 1;
            if (lasti >= 0) {
                PyObject *co = PyCode_GetCode((PyCodeObject *)code);
                if (co == NULL) rc = -1;
                else {
                    if (lasti < PyBytes_GET_SIZE(co))
                        real = r->retops[(unsigned char)PyBytes_AS_STRING(co)[lasti]];
                    Py_DECREF(co);
                }
            }
            /* raised where the frame stands and nothing ran since: an unwind, even at a yield
             * (a suspended generator closed), where the opcode alone would say "yield" */
            if (real && (arg == NULL || arg == Py_None) && r->raised_frame == (void *)frame
                && r->raised_lasti == lasti)
                real = 0;
            r->raised_frame = NULL;
            if (rc == 0 && real) rc = record_arg(r, frame, code, EV_RETURN, arg ? arg : Py_None, n - 1);
            if (rc == 0) rc = PyList_SetSlice(r->stack, n - 1, n, NULL);
        }
        else {
            PyObject *exc = (arg && PyTuple_Check(arg) && PyTuple_GET_SIZE(arg) >= 2)
                                ? PyTuple_GET_ITEM(arg, 1) : Py_None;
            r->raised_frame = (void *)frame;
            r->raised_lasti = PyFrame_GetLasti(frame);
            rc = record_arg(r, frame, code, EV_EXCEPTION, exc, n - 1);
        }
        Py_DECREF(code);
    }
    if (rc < 0) rec_stop(r); /* like settrace: a failing tracer is switched off, error raised */
    return rc;
}

/* Called as a Python trace function: only when the traced program hands sys.gettrace()'s value
 * (this recorder) back to sys.settrace, or a frame's f_trace is called after the trace. While
 * recording, the C trace function is put back and the event recorded as usual. */
static PyObject *Recorder_call(PyObject *self, PyObject *args, PyObject *kwds) {
    PyObject *frame, *arg;
    const char *event;
    if (!PyArg_ParseTuple(args, "O!sO", &PyFrame_Type, &frame, &event, &arg)) return NULL;
    int what = strcmp(event, "call") == 0        ? PyTrace_CALL
               : strcmp(event, "line") == 0      ? PyTrace_LINE
               : strcmp(event, "return") == 0    ? PyTrace_RETURN
               : strcmp(event, "exception") == 0 ? PyTrace_EXCEPTION
                                                 : PyTrace_OPCODE;
    Recorder *r = (Recorder *)self;
    if (!r->stopped && r->installed) {
        PyThreadState *ts = PyThreadState_Get();
        if (ts->c_tracefunc != trace_cb || ts->c_traceobj != self) PyEval_SetTrace(trace_cb, self);
    }
    if (trace_cb(self, (PyFrameObject *)frame, what, arg) < 0) return NULL;
    if (((Recorder *)self)->stopped) Py_RETURN_NONE;
    return Py_NewRef(self);
}

static int Recorder_init(Recorder *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"decide", "max_depth", "max_events", "max_repr", "marker",
                             "return_ops", NULL};
    PyObject *decide, *md, *me, *marker;
    Py_ssize_t limit;
    Py_buffer ops;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOnUy*", kwlist, &decide, &md, &me, &limit,
                                     &marker, &ops))
        return -1;
    memset(self->retops, 0, sizeof(self->retops));
    for (Py_ssize_t i = 0; i < ops.len; i++) self->retops[((unsigned char *)ops.buf)[i]] = 1;
    PyBuffer_Release(&ops);
    self->max_depth = md == Py_None ? PY_SSIZE_T_MAX : PyLong_AsSsize_t(md);
    self->left = me == Py_None ? PY_SSIZE_T_MAX : PyLong_AsSsize_t(me);
    if (PyErr_Occurred()) return -1;
    self->limit = limit;
    self->snaps.weak_keys = 1;
    Py_INCREF(decide);
    Py_XSETREF(self->decide, decide);
    Py_INCREF(marker);
    Py_XSETREF(self->marker, marker);
    Py_XSETREF(self->events, PyList_New(0));
    Py_XSETREF(self->stack, PyList_New(0));
    Py_XSETREF(self->str_cache, PyDict_New());
    if (!self->events || !self->stack || !self->str_cache) return -1;
    return 0;
}

static PyObject *Recorder_install(Recorder *self, PyObject *unused) {
    if (self->installed || self->stopped) {
        PyErr_SetString(PyExc_RuntimeError, "a Recorder is installed once");
        return NULL;
    }
    PyThreadState *ts = PyThreadState_Get();
    self->prev_func = ts->c_tracefunc;
    Py_XINCREF(ts->c_traceobj);
    Py_XSETREF(self->prev_obj, ts->c_traceobj);
    self->installed = 1;
    PyEval_SetTrace(trace_cb, (PyObject *)self);
    Py_RETURN_NONE;
}

static PyObject *Recorder_uninstall(Recorder *self, PyObject *unused) {
    self->stopped = 1;
    self->left = 0;
    if (self->installed) {
        self->installed = 0;
        PyEval_SetTrace(self->prev_func, self->prev_obj);
        Py_CLEAR(self->prev_obj);
        self->prev_func = NULL;
    }
    ptab_clear(&self->snaps); /* the snapshots are only for the run; the reprs are in events */
    Py_CLEAR(self->stack);
    self->stack = PyList_New(0);
    if (self->stack == NULL) return NULL;
    Py_RETURN_NONE;
}

/* build(info_of, frame_type, names) -> list of frames.
 * info_of(code) -> (lines, qualname); names: the 4 event strings. */
static PyObject *Recorder_build(Recorder *self, PyObject *args) {
    PyObject *info_of, *names;
    PyTypeObject *ftype;
    if (!PyArg_ParseTuple(args, "OO!O!", &info_of, &PyType_Type, &ftype, &PyTuple_Type, &names))
        return NULL;
    if (PyTuple_GET_SIZE(names) != 4) { PyErr_SetString(PyExc_ValueError, "names"); return NULL; }
    Py_ssize_t nev = PyList_GET_SIZE(self->events);
    PyObject *frames = PyList_New(0), *empty = PyUnicode_New(0, 0);
    ptab_t reprs = {0}, infos = {0};
    PyObject *last_code = NULL, *lines = NULL, *qualname = NULL;
    if (frames == NULL || empty == NULL) goto fail;
    for (Py_ssize_t e = 0; e < nev; e++) {
        PyObject *ev = PyList_GET_ITEM(self->events, e);
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(ev, 0));
        PyObject *code = PyTuple_GET_ITEM(ev, 1), *lineno = PyTuple_GET_ITEM(ev, 2);
        if (code != last_code) {
            PyObject *info = ptab_get(&infos, code);
            if (info == NULL) {
                info = PyObject_CallOneArg(info_of, code);
                if (info == NULL) goto fail;
                if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 2 ||
                    !PyList_Check(PyTuple_GET_ITEM(info, 0))) {
                    Py_DECREF(info);
                    PyErr_SetString(PyExc_TypeError, "info_of must return (list, str)");
                    goto fail;
                }
                int rc = ptab_put(&infos, code, info);
                Py_DECREF(info);
                if (rc < 0) goto fail;
            }
            lines = PyTuple_GET_ITEM(info, 0);
            qualname = PyTuple_GET_ITEM(info, 1);
            last_code = code;
        }
        PyObject *source = empty;
        if (PyLong_CheckExact(lineno)) {
            Py_ssize_t ln = PyLong_AsSsize_t(lineno), nl = PyList_GET_SIZE(lines);
            if (ln < 0) ln += nl;
            if (ln >= 0 && ln < nl) source = PyList_GET_ITEM(lines, ln);
        }
        PyObject *loc, *arg;
        if (kind <= EV_LINE) {
            PyObject *nm = PyTuple_GET_ITEM(ev, 3), *vals = PyTuple_GET_ITEM(ev, 4);
            Py_ssize_t n = PyTuple_GET_SIZE(nm);
            loc = _PyDict_NewPresized(n);
            if (loc == NULL) goto fail;
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *v = PyTuple_GET_ITEM(vals, i), *rep = v;
                if (!PyUnicode_CheckExact(v)) {
                    rep = ptab_get(&reprs, v);
                    if (rep == NULL) {
                        rep = safe_repr_cut(v, self->limit, self->marker);
                        if (rep == NULL) { Py_DECREF(loc); goto fail; }
                        int rc = ptab_put(&reprs, v, rep);
                        Py_DECREF(rep);
                        if (rc < 0) { Py_DECREF(loc); goto fail; }
                    }
                }
                if (PyDict_SetItem(loc, PyTuple_GET_ITEM(nm, i), rep) < 0) { Py_DECREF(loc); goto fail; }
            }
            arg = Py_None;
        }
        else {
            loc = PyDict_New();
            if (loc == NULL) goto fail;
            arg = PyTuple_GET_ITEM(ev, 4);
        }
        PyObject *f = ftype->tp_alloc(ftype, 7);
        if (f == NULL) { Py_DECREF(loc); goto fail; }
        PyObject *items[7] = {PyTuple_GET_ITEM(names, kind), lineno, source, loc, arg, qualname,
                              PyTuple_GET_ITEM(ev, 5)};
        for (int i = 0; i < 7; i++) {
            if (i != 3) Py_INCREF(items[i]);
            PyTuple_SET_ITEM(f, i, items[i]);
        }
        int rc = PyList_Append(frames, f);
        Py_DECREF(f);
        if (rc < 0) goto fail;
    }
    ptab_clear(&reprs);
    ptab_clear(&infos);
    Py_DECREF(empty);
    /* The raw events are spent: a generator frame outliving the call (its f_trace is this
     * recorder) must not keep them alive. */
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) { Py_DECREF(frames); return NULL; }
    Py_SETREF(self->events, fresh);
    return frames;
fail:
    ptab_clear(&reprs);
    ptab_clear(&infos);
    Py_XDECREF(empty);
    Py_XDECREF(frames);
    return NULL;
}

static void Recorder_dealloc(Recorder *self) {
    if (self->installed) { /* never left installed: the trace function holds a reference */
        self->installed = 0;
    }
    Py_XDECREF(self->events);
    Py_XDECREF(self->decide);
    Py_XDECREF(self->stack);
    Py_XDECREF(self->str_cache);
    Py_XDECREF(self->marker);
    Py_XDECREF(self->prev_obj);
    Py_XDECREF(self->last_names);
    ptab_clear(&self->wanted);
    ptab_clear(&self->snaps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Recorder_get_truncated(Recorder *self, void *c) { return PyBool_FromLong(self->truncated); }
static PyObject *Recorder_get_stopped(Recorder *self, void *c) { return PyBool_FromLong(self->stopped); }
static PyObject *Recorder_get_events(Recorder *self, void *c) { return Py_NewRef(self->events); }

static PyGetSetDef Recorder_getset[] = {
    {"truncated", (getter)Recorder_get_truncated, NULL, "max_events was reached", NULL},
    {"stopped", (getter)Recorder_get_stopped, NULL, "recording is over", NULL},
    {"events", (getter)Recorder_get_events, NULL, "raw event tuples", NULL},
    {NULL}};

static PyMethodDef Recorder_methods[] = {
    {"install", (PyCFunction)Recorder_install, METH_NOARGS, "start tracing this thread"},
    {"uninstall", (PyCFunction)Recorder_uninstall, METH_NOARGS,
     "stop, and put back the trace function found by install()"},
    {"build", (PyCFunction)Recorder_build, METH_VARARGS,
     "build(info_of, frame_type, event_names) -> list of frames"},
    {NULL}};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracegym.tracers._ctrace.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Recorder_init,
    .tp_call = Recorder_call,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_methods = Recorder_methods,
    .tp_getset = Recorder_getset,
    .tp_doc = "Recorder(decide, max_depth, max_events, max_repr, marker, return_ops)",
};

static struct PyModuleDef ctrace_module = {
    PyModuleDef_HEAD_INIT, "_ctrace", "C recorder for tracegym.tracers.trace (CPython 3.11).", -1,
    NULL};

PyMODINIT_FUNC PyInit__ctrace(void) {
    if (PyType_Ready(&RecorderType) < 0) return NULL;
    for (int i = 0; i < 4; i++) kind_obj[i] = PyLong_FromLong(i);
    str_f_trace = PyUnicode_InternFromString("f_trace");
    if (str_f_trace == NULL) return NULL;
    PyObject *m = PyModule_Create(&ctrace_module);
    if (m == NULL) return NULL;
    Py_INCREF(&RecorderType);
    if (PyModule_AddObject(m, "Recorder", (PyObject *)&RecorderType) < 0) {
        Py_DECREF(&RecorderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#endif
