/* The mock departments' compiled kernels, for deriving an export's records in bulk: a
 * chunk's NDJSON from its fields' byte matrices (compact, for jsonbytes), and the city's
 * random draws, hash and keyed permutation over arrays (splitmix, mix, feistel, for
 * prng_arrays). Each is optional: native.KERNELS is None in an install built without a C
 * compiler, and the callers keep their NumPy ways (tests compare both with the scalar code).
 *
 * ---- compact: the NDJSON of a chunk's rows, in one pass ----------------------------------
 *
 * jsonbytes keeps a column of JSON values as a (rows, width) uint8 matrix padded with NUL
 * bytes (JSON text never holds a raw NUL). A chunk's NDJSON is, row by row, the non-NUL
 * bytes of each part in order: in NumPy that is a copy of every part into one matrix, a
 * pass making the mask of its non-NUL bytes and a boolean compression, three passes over
 * the bytes and ~0.9 ns a byte, half of a cold export's derivation (household). Here the
 * parts are read where they are and their bytes written once, sixteen at a time (a block
 * holding NULs byte by byte, without a branch): a household chunk's NDJSON in 18 ms per
 * 100,000 rows against 44 ms.
 *
 * jsonbytes.ndjson_array uses this module when it is built and joins in NumPy otherwise;
 * both give the same bytes (tests/departments/test_jsonbytes.py compares them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct {
    /* A matrix: its first row. A constant: its bytes without NULs, in a zeroed buffer of
     * a multiple of sixteen bytes (written sixteen at a time). */
    const uint8_t *data;
    Py_ssize_t row_stride;
    Py_ssize_t col_stride;
    Py_ssize_t width; /* a constant's without its NULs */
    /* A matrix: one past its highest byte; reading sixteen bytes at s stays inside the
     * array while s + 16 <= end. */
    const uint8_t *end;
    int constant;
} Part;

/* One row of a matrix part (column step 1), written at o without its NULs; returns the
 * new end. Every store writes sixteen bytes: at most the bytes read so far have been
 * written, and the output has sixteen bytes of slack past the rows' total, so a store
 * never leaves it; bytes past the new end are overwritten by what follows. */
static inline uint8_t *copy_row(uint8_t *o, const uint8_t *s, Py_ssize_t w,
                                const uint8_t *end) {
    Py_ssize_t j = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    for (; j < w; j += 16) {
        Py_ssize_t take = w - j < 16 ? w - j : 16;
        if (s + j + 16 > end) {
            break; /* the matrix's last bytes: read no further than they go */
        }
        __m128i v = _mm_loadu_si128((const __m128i *)(s + j));
        unsigned nul = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero));
        nul &= (1u << take) - 1u;
        _mm_storeu_si128((__m128i *)o, v);
        if (nul == 0) {
            o += take;
            continue;
        }
        /* These sixteen one at a time, without a branch (measured no slower for a
         * household chunk than finding the runs of padding first). */
        for (Py_ssize_t q = 0; q < take; q++) {
            uint8_t b = s[j + q];
            *o = b;
            o += (b != 0);
        }
    }
#else
    (void)end;
#endif
    for (; j < w; j++) {
        uint8_t b = s[j];
        *o = b;
        o += (b != 0);
    }
    return o;
}

/* One row of a part whose bytes are not consecutive (a column step other than one). */
static inline uint8_t *copy_strided(uint8_t *o, const uint8_t *s, Py_ssize_t w,
                                    Py_ssize_t step) {
    for (Py_ssize_t j = 0; j < w; j++) {
        uint8_t b = s[j * step];
        *o = b;
        o += (b != 0);
    }
    return o;
}

/* A constant, NULs dropped already, written sixteen bytes at a time from its padded
 * buffer (see copy_row for why the stores stay inside the output). */
static inline uint8_t *copy_constant(uint8_t *o, const uint8_t *c, Py_ssize_t w) {
#if defined(__SSE2__)
    for (Py_ssize_t j = 0; j < w; j += 16) {
        _mm_storeu_si128((__m128i *)(o + j), _mm_loadu_si128((const __m128i *)(c + j)));
    }
#else
    memcpy(o, c, (size_t)w);
#endif
    return o + w;
}

static void release(Py_buffer *views, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++) {
        PyBuffer_Release(&views[i]);
    }
}

/* A constant's bytes without NULs, in a zeroed buffer of a multiple of sixteen bytes
 * (copy_constant reads it sixteen at a time); its length in *width. */
static uint8_t *constant_of(const Py_buffer *v, Py_ssize_t *width) {
    Py_ssize_t len = v->len;
    Py_ssize_t step = v->ndim == 1 ? v->strides[0] : 1;
    uint8_t *c = PyMem_Calloc((size_t)((len + 15) / 16 * 16 + 16), 1);
    if (c == NULL) {
        return NULL;
    }
    const uint8_t *s = v->buf;
    Py_ssize_t w = 0;
    for (Py_ssize_t j = 0; j < len; j++) {
        uint8_t b = s[j * step];
        if (b) {
            c[w++] = b;
        }
    }
    *width = w;
    return c;
}

/* Sixteen bytes of slack past the rows' total (the sixteen-byte stores, see copy_row). */
#define SLACK 16

PyDoc_STRVAR(compact_doc,
    "compact(n, parts, out) -> int\n\n"
    "Write the non-NUL bytes of each row's parts, in order, into out; return how many.\n"
    "Each part is a bytes-like constant (the same bytes on every row) or a 2-D uint8\n"
    "array of n rows. out is a writable contiguous buffer of at least n times the sum of\n"
    "the parts' widths, plus 16 bytes; what follows the bytes written is undefined.");

static PyObject *compact(PyObject *self, PyObject *args) {
    Py_ssize_t n;
    PyObject *seq_in;
    Py_buffer out;
    (void)self;
    if (!PyArg_ParseTuple(args, "nOw*", &n, &seq_in, &out)) {
        return NULL;
    }
    if (n < 0) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "compact: n must not be negative");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(seq_in, "compact: parts must be a sequence");
    if (seq == NULL) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
    Py_buffer *views = PyMem_Calloc((size_t)(k ? k : 1), sizeof(Py_buffer));
    Part *parts = PyMem_Calloc((size_t)(k ? k : 1), sizeof(Part));
    Py_ssize_t held = 0;
    PyObject *result = NULL;
    if (views == NULL || parts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t width = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (PyObject_GetBuffer(item, &views[i], PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) {
            goto done;
        }
        held++;
        Py_buffer *v = &views[i];
        Part *p = &parts[i];
        if (v->itemsize != 1 || (v->format != NULL && strcmp(v->format, "B") != 0)) {
            PyErr_Format(PyExc_TypeError, "compact: part %zd is not of bytes (uint8)", i);
            goto done;
        }
        if (v->ndim <= 1) {
            p->constant = 1;
            p->data = constant_of(v, &p->width);
            if (p->data == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            if (v->len > PY_SSIZE_T_MAX - width) {
                PyErr_SetString(PyExc_OverflowError, "compact: rows too wide");
                goto done;
            }
            width += v->len;
            continue;
        }
        if (v->ndim != 2) {
            PyErr_Format(PyExc_ValueError, "compact: part %zd has %d dimensions, not 1 or 2",
                         i, v->ndim);
            goto done;
        }
        if (v->shape[0] != n) {
            PyErr_Format(PyExc_ValueError, "compact: part %zd has %zd rows, not %zd", i,
                         v->shape[0], n);
            goto done;
        }
        p->data = v->buf;
        p->row_stride = v->strides[0];
        p->col_stride = v->strides[1];
        p->width = v->shape[1];
        /* One past the view's highest byte, whichever way its strides run. */
        p->end = (const uint8_t *)v->buf + 1;
        if (n > 0 && p->row_stride > 0) {
            p->end += (n - 1) * p->row_stride;
        }
        if (p->width > 0 && p->col_stride > 0) {
            p->end += (p->width - 1) * p->col_stride;
        }
        if (p->width > PY_SSIZE_T_MAX - width) {
            PyErr_SetString(PyExc_OverflowError, "compact: rows too wide");
            goto done;
        }
        width += p->width;
    }
    if (n && width > (PY_SSIZE_T_MAX - SLACK) / n) {
        PyErr_SetString(PyExc_OverflowError, "compact: too many bytes");
        goto done;
    }
    if (out.len < n * width + SLACK) {
        PyErr_Format(PyExc_ValueError,
                     "compact: out holds %zd bytes, the rows need up to %zd and %d more", out.len,
                     n * width, SLACK);
        goto done;
    }
    uint8_t *start = out.buf;
    uint8_t *o = start;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < n; r++) {
        for (Py_ssize_t i = 0; i < k; i++) {
            const Part *p = &parts[i];
            if (p->constant) {
                o = copy_constant(o, p->data, p->width);
            } else if (p->col_stride == 1) {
                o = copy_row(o, p->data + r * p->row_stride, p->width, p->end);
            } else {
                o = copy_strided(o, p->data + r * p->row_stride, p->width, p->col_stride);
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t((Py_ssize_t)(o - start));
done:
    if (views != NULL) {
        release(views, held);
    }
    if (parts != NULL) {
        for (Py_ssize_t i = 0; i < k; i++) {
            if (parts[i].constant) {
                PyMem_Free((void *)parts[i].data);
            }
        }
    }
    PyMem_Free(views);
    PyMem_Free(parts);
    Py_DECREF(seq);
    PyBuffer_Release(&out);
    return result;
}

/* ---- the city's randomness: prng.py's hash, draws and permutation over arrays ---------
 *
 * prng_arrays does each in NumPy, one array operation at a time over every element: ~10
 * passes for a draw, ~40 NumPy calls for a permutation of a few thousand elements, whose
 * own overhead was most of the cost at the sizes a chunk has. Here each element is taken
 * once; uint64 arithmetic wraps as NumPy's does (and as the scalar code's & M64). */

#define GOLDEN 0x9E3779B97F4A7C15ULL
#define C1 0xBF58476D1CE4E5B9ULL
#define C2 0x94D049BB133111EBULL

/* One link of city.mix's chain: the hash so far with the next part. */
static inline uint64_t mix_step(uint64_t h, uint64_t part) {
    uint64_t x = (h ^ part) * C1;
    x ^= x >> 31;
    x = (x + GOLDEN) * C2;
    return x ^ (x >> 29);
}

/* prng.Feistel._f: the round function of one half under one round's key. */
static inline uint64_t feistel_f(uint64_t half_value, uint64_t key, uint64_t mask) {
    uint64_t f = (half_value ^ key) * GOLDEN;
    f ^= f >> 32;
    return ((f * C1) >> 19) & mask;
}

/* A 1-D buffer of 64-bit integers (signed ones are taken as their two's-complement bits,
 * as NumPy's astype(uint64) takes them). */
static int u64_view(PyObject *obj, Py_buffer *view, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    const char *f = view->format != NULL ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') {
        f++;
    }
    int integer = strcmp(f, "Q") == 0 || strcmp(f, "L") == 0 || strcmp(f, "q") == 0 ||
                  strcmp(f, "l") == 0;
    if (view->itemsize != 8 || !integer) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s must be an array of 64-bit integers", what);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(splitmix_doc,
    "splitmix(seeds, out) -> None\n\n"
    "The first k draws of splitmix64 seeded with each of the n seeds, into out (k rows of\n"
    "n, C order; uint64).");

static PyObject *splitmix(PyObject *self, PyObject *args) {
    PyObject *seeds_obj, *out_obj;
    Py_buffer seeds, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &seeds_obj, &out_obj)) {
        return NULL;
    }
    if (u64_view(seeds_obj, &seeds, 0, "seeds") < 0) {
        return NULL;
    }
    if (u64_view(out_obj, &out, 1, "out") < 0) {
        PyBuffer_Release(&seeds);
        return NULL;
    }
    Py_ssize_t n = seeds.len / 8;
    if ((n == 0 && out.len != 0) || (n != 0 && out.len % seeds.len != 0)) {
        PyErr_SetString(PyExc_ValueError, "splitmix: out must hold k rows of len(seeds)");
        PyBuffer_Release(&seeds);
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t k = n ? out.len / seeds.len : 0;
    const uint64_t *in = seeds.buf;
    uint64_t *o = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < k; j++) {
        uint64_t step = (uint64_t)(j + 1) * GOLDEN;
        uint64_t *row = o + j * n;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t z = in[i] + step;
            z = (z ^ (z >> 30)) * C1;
            z = (z ^ (z >> 27)) * C2;
            row[i] = z ^ (z >> 31);
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&seeds);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mix_doc,
    "mix(out, parts) -> None\n\n"
    "city.mix of the parts for each element, into out (uint64): each part an int (the\n"
    "same for every element) or an array of 64-bit integers as long as out.");

static PyObject *mix(PyObject *self, PyObject *args) {
    PyObject *out_obj, *parts_in;
    Py_buffer out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &out_obj, &parts_in)) {
        return NULL;
    }
    if (u64_view(out_obj, &out, 1, "out") < 0) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(parts_in, "mix: parts must be a sequence");
    if (seq == NULL) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t n = out.len / 8;
    uint64_t *h = out.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        h[i] = GOLDEN;
    }
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    for (Py_ssize_t p = 0; p < k; p++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, p);
        if (PyLong_Check(item)) {
            /* An int of any size, taken modulo 2**64 (the scalar code's & M64). */
            uint64_t c = (uint64_t)PyLong_AsUnsignedLongLongMask(item);
            if (c == (uint64_t)-1 && PyErr_Occurred()) {
                goto done;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                h[i] = mix_step(h[i], c);
            }
            continue;
        }
        Py_buffer part;
        if (u64_view(item, &part, 0, "a part") < 0) {
            goto done;
        }
        if (part.len != out.len) {
            PyBuffer_Release(&part);
            PyErr_Format(PyExc_ValueError, "mix: part %zd has %zd elements, not %zd", p,
                         part.len / 8, n);
            goto done;
        }
        const uint64_t *v = part.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            h[i] = mix_step(h[i], v[i]);
        }
        PyBuffer_Release(&part);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    Py_DECREF(seq);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(feistel_doc,
    "feistel(x, out, keys, half, domain, backward) -> None\n\n"
    "prng.Feistel's forward (or, backward, inverse) image of each element of x, into out:\n"
    "four rounds over halves of `half` bits, walked again until inside [0, domain).");

static PyObject *feistel(PyObject *self, PyObject *args) {
    PyObject *x_obj, *out_obj, *keys_obj;
    unsigned int half;
    unsigned long long domain;
    int backward;
    Py_buffer x, out;
    uint64_t keys[4];
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOIKp", &x_obj, &out_obj, &keys_obj, &half, &domain,
                          &backward)) {
        return NULL;
    }
    if (half < 1 || half > 32) {
        PyErr_SetString(PyExc_ValueError, "feistel: half must be 1 to 32 bits");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(keys_obj, "feistel: keys must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    if (PySequence_Fast_GET_SIZE(seq) != 4) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "feistel: four round keys");
        return NULL;
    }
    for (int r = 0; r < 4; r++) {
        keys[r] = (uint64_t)PyLong_AsUnsignedLongLongMask(PySequence_Fast_GET_ITEM(seq, r));
        if (keys[r] == (uint64_t)-1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    if (u64_view(x_obj, &x, 0, "x") < 0) {
        return NULL;
    }
    if (u64_view(out_obj, &out, 1, "out") < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (x.len != out.len) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "feistel: out must be as long as x");
        return NULL;
    }
    uint64_t mask = (1ULL << half) - 1ULL;
    uint64_t limit = half == 32 ? UINT64_MAX : (1ULL << (2 * half)) - 1ULL;
    if (domain == 0 || domain - 1 > limit) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "feistel: the domain must fit in 2 * half bits");
        return NULL;
    }
    Py_ssize_t n = x.len / 8;
    const uint64_t *in = x.buf;
    uint64_t *o = out.buf;
    /* An element inside the domain is on its own cycle, so its walk comes back into the
     * domain; one outside may be on a cycle that never does, and its walk would not end. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (in[i] >= domain) {
            PyBuffer_Release(&x);
            PyBuffer_Release(&out);
            PyErr_Format(PyExc_ValueError, "feistel: element %zd is outside the domain", i);
            return NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v = in[i];
        do {
            uint64_t left = v >> half, right = v & mask;
            if (backward) { /* the rounds undone in reverse */
                for (int r = 3; r >= 0; r--) {
                    uint64_t undone = right ^ feistel_f(left, keys[r], mask);
                    right = left;
                    left = undone;
                }
            } else {
                for (int r = 0; r < 4; r++) {
                    uint64_t next = left ^ feistel_f(right, keys[r], mask);
                    left = right;
                    right = next;
                }
            }
            v = (left << half) | right;
        } while (v >= domain);
        o[i] = v;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"compact", compact, METH_VARARGS, compact_doc},
    {"splitmix", splitmix, METH_VARARGS, splitmix_doc},
    {"mix", mix, METH_VARARGS, mix_doc},
    {"feistel", feistel, METH_VARARGS, feistel_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "exchange.departments._kernels",
    .m_doc = "The mock departments' compiled kernels: a chunk's NDJSON in one pass "
             "(jsonbytes), the city's randomness over arrays (prng_arrays).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
