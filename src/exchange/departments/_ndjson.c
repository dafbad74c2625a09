/* The NDJSON of a chunk's rows from its fields' byte matrices, in one pass.
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

static PyMethodDef methods[] = {
    {"compact", compact, METH_VARARGS, compact_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "exchange.departments._ndjson",
    .m_doc = "A chunk's NDJSON from its fields' byte matrices in one pass (see jsonbytes).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__ndjson(void) { return PyModule_Create(&module); }
