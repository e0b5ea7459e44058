/* The compiled scan behind detclip_bench/metrics/fastjson.py: a COCO/LVIS results file (a JSON list of
 * {image_id, category_id, bbox, score} records) into columns, with no Python object per record.
 *
 * Sound, not complete: scan() either fills the columns with exactly what msgspec decodes (same records,
 * same int64 ids, the same correctly rounded float64 values) or returns DECLINE, and the caller runs the
 * msgspec route, which then decides and words any error. It declines on everything it does not check
 * itself: JSON outside a strict subset (a string with an escape, a control or non-ASCII byte), a missing,
 * repeated or mistyped required key, an id of more than 18 digits, too many numbers left to Python.
 *
 * The buffer ends with PAD NUL bytes. NUL is no whitespace, no token and a control byte inside a string,
 * so every loop stops at the first one, and the loads and compares made at or before it (8 and at most 17
 * bytes) stay inside the buffer.
 *
 * Numbers (m * 10^q, m the first 19 significant digits):
 *   - m <= 2^53 and |q| <= 22: one IEEE multiplication or division of two exact doubles (Clinger);
 *   - otherwise m times F = floor(5^q * 2^s), a 128-bit table row. With w = m normalised to 64 bits the true
 *     w * 5^q * 2^s lies in [P, P + w), P = w * F < 2^192, so the top 128 bits of P are exact or one unit
 *     short; the 53 bits and the rounding bit taken from them are final unless that unit could carry into
 *     them, or the bits below the rounding bit are all zero with the rounding bit set (a possible tie);
 *   - those, more than 19 significant digits, subnormals and out-of-range exponents are left to Python
 *     (float(text), or float(int(text)) for an integer token, as msgspec reads "-0" as 0.0).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

/* Exactness needs IEEE double arithmetic without excess precision (x86-64, arm64: SSE2 / NEON). Elsewhere the
 * scan declines every file, and score reads with msgspec alone. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define EXACT_DOUBLES 1
#else
#define EXACT_DOUBLES 0
#endif

#define OK_END 0
#define OK_STOP 1
#define DECLINE 2
#define PAD 32 /* > the longest literal compared at once (17 bytes) */
#define QMIN (-342)
#define QMAX 308
#define DEPTH 64

static uint64_t F_HI[QMAX - QMIN + 1], F_LO[QMAX - QMIN + 1];
static int F_SHIFT[QMAX - QMIN + 1];
static int tables_set = 0;
static const double POW10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline uint64_t load8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void mul64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
#if defined(__SIZEOF_INT128__)
    __uint128_t r = (__uint128_t)a * b;
    *hi = (uint64_t)(r >> 64);
    *lo = (uint64_t)r;
#else
    uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    uint64_t p0 = a_lo * b_lo, p1 = a_lo * b_hi, p2 = a_hi * b_lo, p3 = a_hi * b_hi;
    uint64_t mid = (p0 >> 32) + (p1 & 0xFFFFFFFFu) + (p2 & 0xFFFFFFFFu);
    *hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
    *lo = (p0 & 0xFFFFFFFFu) | (mid << 32);
#endif
}

/* 1 and *out = m * 10^q correctly rounded (0 < m < 2^64); 0: not decided here. */
static inline int to_double(uint64_t m, int64_t q, double *out) {
    if (m <= (UINT64_C(1) << 53) && q >= -22 && q <= 22) {
        double d = (double)m;
        *out = q >= 0 ? d * POW10[q] : d / POW10[-q];
        return 1;
    }
    if (q < QMIN || q > QMAX) return 0;
#if defined(__GNUC__) || defined(__clang__)
    int lz = __builtin_clzll(m);
#else
    int lz = 0;
    for (uint64_t t = m; !(t >> 63); t <<= 1) lz++;
#endif
    uint64_t w = m << lz;
    int i = (int)(q - QMIN);
    uint64_t h1, l1, h2, l2;
    mul64(w, F_LO[i], &h1, &l1);
    mul64(w, F_HI[i], &h2, &l2);
    uint64_t p1 = h1 + l2;
    uint64_t p2 = h2 + (p1 < h1);
    int msb, rbits;
    if (p2 >> 63) {
        msb = 191;
        rbits = 10;
    } else {
        msb = 190;
        rbits = 9;
    }
    uint64_t rmask = (UINT64_C(1) << rbits) - 1;
    uint64_t kept = p2 >> rbits; /* 53 bits and the rounding bit */
    uint64_t r_hi = p2 & rmask;
    if (r_hi == rmask && p1 >= UINT64_MAX - 1) return 0; /* the missing unit could carry into the kept bits */
    uint64_t mant = kept >> 1;
    if (kept & 1) {
        if (r_hi == 0 && p1 == 0) return 0; /* maybe exactly a tie */
        mant += 1;                          /* strictly above the midpoint */
    }
    int64_t e = msb + q - lz - F_SHIFT[i];
    if (mant == (UINT64_C(1) << 53)) {
        mant = UINT64_C(1) << 52;
        e += 1;
    }
    if (e + 1023 < 1 || e + 1023 > 2046) return 0; /* subnormal or beyond the largest double */
    uint64_t bits = ((uint64_t)(e + 1023) << 52) | (mant & ((UINT64_C(1) << 52) - 1));
    memcpy(out, &bits, 8);
    return 1;
}

static inline int is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static inline const uint8_t *ws(const uint8_t *p) {
    while (is_ws(*p)) p++;
    return p;
}

/* p at an opening quote: the closing quote, or NULL at an escape, a control or non-ASCII byte. */
static inline const uint8_t *string_end(const uint8_t *p) {
    p++;
    for (;;) {
        uint8_t c = *p;
        if (c == '"') return p;
        if (c < 32 || c > 126 || c == '\\') return NULL;
        p++;
    }
}

static inline int eight_digits(uint64_t v) {
    return (((v + UINT64_C(0x4646464646464646)) | (v - UINT64_C(0x3030303030303030))) &
            UINT64_C(0x8080808080808080)) == 0;
}

static inline uint64_t parse_eight(uint64_t v) {
    v -= UINT64_C(0x3030303030303030);
    v = v * 10 + (v >> 8);
    return (((v & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x000F424000000064)) +
            (((v >> 16) & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x0000271000000001))) >> 32;
}

typedef struct {
    const uint8_t *end; /* NULL: malformed */
    int is_int, neg, nd;
    uint64_t m;
    int64_t q;
} Number;

/* One JSON number at p; its value is m * 10^q while nd (significant digits) <= 19. */
static inline Number number(const uint8_t *p) {
    Number r = {NULL, 1, 0, 0, 0, 0};
    if (*p == '-') {
        r.neg = 1;
        p++;
    }
    uint8_t c = *p;
    if (c == '0') { /* no more integer digits may follow (a digit fails the caller's next check) */
        p++;
    } else if (c >= '1' && c <= '9') {
        while (r.nd <= 11) {
            uint64_t v = load8(p);
            if (!eight_digits(v)) break;
            r.m = r.m * 100000000u + parse_eight(v);
            r.nd += 8;
            p += 8;
        }
        for (c = *p; c >= '0' && c <= '9'; c = *++p) {
            if (r.nd < 19) r.m = r.m * 10 + (c - '0');
            else r.q++;
            r.nd++;
        }
    } else {
        return r;
    }
    c = *p;
    if (c == '.') {
        r.is_int = 0;
        c = *++p;
        if (c < '0' || c > '9') return r;
        if (r.nd == 0) /* leading zeros of the fraction: not significant */
            for (; c == '0'; c = *++p) r.q--;
        while (r.nd <= 11) {
            uint64_t v = load8(p);
            if (!eight_digits(v)) break;
            r.m = r.m * 100000000u + parse_eight(v);
            r.nd += 8;
            r.q -= 8;
            p += 8;
        }
        for (c = *p; c >= '0' && c <= '9'; c = *++p) {
            if (r.nd < 19) {
                r.m = r.m * 10 + (c - '0');
                r.q--;
            }
            r.nd++;
        }
    }
    if (c == 'e' || c == 'E') {
        r.is_int = 0;
        c = *++p;
        int eneg = 0;
        if (c == '-' || c == '+') {
            eneg = c == '-';
            c = *++p;
        }
        if (c < '0' || c > '9') return r;
        int64_t ex = 0;
        for (; c >= '0' && c <= '9'; c = *++p)
            if (ex < 1000000) ex = ex * 10 + (c - '0');
        r.q += eneg ? -ex : ex;
    }
    r.end = p;
    return r;
}

/* p at a member's key: after "key" ':' and whitespace, or NULL. */
static inline const uint8_t *member_key(const uint8_t *p) {
    if (*p != '"') return NULL;
    p = string_end(p);
    if (!p) return NULL;
    p = ws(p + 1);
    if (*p != ':') return NULL;
    return ws(p + 1);
}

/* Validate and skip the JSON value at p (whitespace first): after it, or NULL. */
static const uint8_t *skip_value(const uint8_t *p) {
    uint8_t stack[DEPTH];
    int depth = 0;
    for (;;) { /* a value is expected at p */
        p = ws(p);
        uint8_t c = *p;
        if (c == '{' || c == '[') {
            if (depth == DEPTH) return NULL;
            stack[depth++] = c;
            p = ws(p + 1);
            if (*p == c + 2) { /* '}' ']': empty */
                p++;
                depth--;
            } else if (c == '{') {
                p = member_key(p);
                if (!p) return NULL;
                continue;
            } else {
                continue;
            }
        } else if (c == '"') {
            p = string_end(p);
            if (!p) return NULL;
            p++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            p = number(p).end;
            if (!p) return NULL;
        } else if (c == 't') {
            if (memcmp(p, "true", 4)) return NULL;
            p += 4;
        } else if (c == 'f') {
            if (memcmp(p, "false", 5)) return NULL;
            p += 5;
        } else if (c == 'n') {
            if (memcmp(p, "null", 4)) return NULL;
            p += 4;
        } else {
            return NULL;
        }
        for (;;) { /* after a value: close containers, or go on to the next element / member */
            if (depth == 0) return p;
            p = ws(p);
            c = *p;
            uint8_t top = stack[depth - 1];
            if (c == ',') {
                p = ws(p + 1);
                if (top == '{') {
                    p = member_key(p);
                    if (!p) return NULL;
                }
                break;
            }
            if (c == top + 2) {
                p++;
                depth--;
                continue;
            }
            return NULL;
        }
    }
}

/* The key whose opening quote is at p: 0 image_id, 1 category_id, 2 bbox, 3 score, -1 any other;
 * *after = past its closing quote (NULL: a string this scan does not read). */
static inline int key_code(const uint8_t *p, const uint8_t **after) {
    if (!memcmp(p, "\"image_id\"", 10)) {
        *after = p + 10;
        return 0;
    }
    if (!memcmp(p, "\"category_id\"", 13)) {
        *after = p + 13;
        return 1;
    }
    if (!memcmp(p, "\"bbox\"", 6)) {
        *after = p + 6;
        return 2;
    }
    if (!memcmp(p, "\"score\"", 7)) {
        *after = p + 7;
        return 3;
    }
    const uint8_t *q = string_end(p);
    *after = q ? q + 1 : NULL;
    return -1;
}

typedef struct {
    int64_t *img, *cat, *hard;
    double *box, *score;
    Py_ssize_t cap, hard_cap;
    Py_ssize_t nh;             /* numbers left to Python so far */
    Py_ssize_t first_negative; /* the first record with a negative width or height, or -1 */
    const uint8_t *base;
} Out;

/* Whether a bbox number of the record being read (its numbers left to Python from hard[from] on) waits for Python. */
static inline int bbox_left_to_python(const Out *o, Py_ssize_t from) {
    for (Py_ssize_t h = from; h < o->nh; h++)
        if (o->hard[4 * h] % 5 < 4) return 1;
    return 0;
}

/* The JSON number at p into *dst (slot: 5 * record + 0-3 bbox, 4 score): the offset after it, or NULL (not a
 * number, or no room left for a number left to Python). */
static inline const uint8_t *put_float(const uint8_t *p, double *dst, int64_t slot, Out *o) {
    if (!(*p == '-' || (*p >= '0' && *p <= '9'))) return NULL;
    Number n = number(p);
    if (!n.end) return NULL;
    double value = 0.0;
    int ok;
    if (n.nd > 19) {
        ok = 0;
    } else if (n.nd == 0) {
        ok = 1;
        value = (n.neg && !n.is_int) ? -0.0 : 0.0; /* msgspec: the integer -0 is 0.0 */
    } else {
        ok = to_double(n.m, n.q, &value);
        if (n.neg) value = -value;
    }
    if (!ok) {
        if (o->nh == o->hard_cap) return NULL;
        int64_t *h = o->hard + 4 * o->nh++;
        h[0] = slot;
        h[1] = p - o->base;
        h[2] = n.end - o->base;
        h[3] = n.is_int;
    }
    *dst = value;
    return n.end;
}

/* The JSON integer id at p (at most 18 digits) into *dst: the offset after it, or NULL. */
static inline const uint8_t *put_id(const uint8_t *p, int64_t *dst) {
    Number n = number(p);
    if (!n.end || !n.is_int || n.nd > 18) return NULL;
    *dst = n.neg ? -(int64_t)n.m : (int64_t)n.m;
    return n.end;
}

/* A record in the layout json.dumps / orjson write (keys in the usual order, fixed separators), as one run of
 * literal compares: the offset after its '}', or NULL (then the general member loop reads the record). */
typedef struct {
    const char *open;
    size_t n_open;
    const char *cat;
    size_t n_cat;
    const char *bbox;
    size_t n_bbox;
    const char *sep;
    size_t n_sep;
    const char *score;
    size_t n_score;
} Layout;

#define LIT(s) s, sizeof(s) - 1
static const Layout LAYOUTS[2] = {
    {LIT("{\"image_id\":"), LIT(",\"category_id\":"), LIT(",\"bbox\":["), LIT(","), LIT("],\"score\":")},
    {LIT("{\"image_id\": "), LIT(", \"category_id\": "), LIT(", \"bbox\": ["), LIT(", "), LIT("], \"score\": ")},
};

static inline const uint8_t *layout_record(const uint8_t *p, const Layout *l, Py_ssize_t k, Out *o) {
    if (memcmp(p, l->open, l->n_open)) return NULL;
    p = put_id(p + l->n_open, o->img + k);
    if (!p || memcmp(p, l->cat, l->n_cat)) return NULL;
    p = put_id(p + l->n_cat, o->cat + k);
    if (!p || memcmp(p, l->bbox, l->n_bbox)) return NULL;
    p += l->n_bbox;
    for (int j = 0; j < 4; j++) {
        if (j) {
            if (memcmp(p, l->sep, l->n_sep)) return NULL;
            p += l->n_sep;
        }
        p = put_float(p, o->box + 4 * k + j, 5 * (int64_t)k + j, o);
        if (!p) return NULL;
    }
    if (memcmp(p, l->score, l->n_score)) return NULL;
    p = put_float(p + l->n_score, o->score + k, 5 * (int64_t)k + 4, o);
    if (!p || *p != '}') return NULL;
    return p;
}

/* Records from p (at the list's '[' when first, else at a record's '{') to the end, or until a record would
 * start at or after stop. hard[4h..4h+3] = (slot, start, end, is_int), slot = 5 * record + (0-3 bbox, 4 score). */
static int scan_records(const uint8_t *base, Py_ssize_t size, Py_ssize_t start, int first, Py_ssize_t stop,
                        Out *o, Py_ssize_t *records, Py_ssize_t *offset, Py_ssize_t *nhard) {
    const uint8_t *p = base + start, *stop_at = base + stop, *end = base + size;
    Py_ssize_t k = 0;
    int status = DECLINE, layout = 0;
    o->nh = 0;
    o->first_negative = -1;
    o->base = base;
    if (!EXACT_DOUBLES) goto done;
    if (first) {
        p = ws(p);
        if (*p != '[') goto done;
        p = ws(p + 1);
    }
    for (;;) {
        if (p >= stop_at) {
            status = OK_STOP;
            goto done;
        }
        if (*p != '{' || k == o->cap) goto done;
        Py_ssize_t nh_before = o->nh;
        const uint8_t *q = layout_record(p, &LAYOUTS[layout], k, o);
        if (!q) {
            o->nh = nh_before; /* the general loop below reads the record again, from its start */
            q = layout_record(p, &LAYOUTS[1 - layout], k, o);
            if (q) layout = 1 - layout;
            else o->nh = nh_before;
        }
        if (q) {
            p = q;
            goto record_done;
        }
        p = ws(p + 1);
        int have = 0;
        for (;;) { /* one member */
            if (*p != '"') goto done;
            const uint8_t *after;
            int code = key_code(p, &after);
            if (!after) goto done;
            p = ws(after);
            if (*p != ':') goto done;
            p = ws(p + 1);
            if (code < 0) {
                p = skip_value(p);
                if (!p) goto done;
            } else if ((have >> code) & 1) {
                goto done; /* a repeated key (msgspec keeps the last one) */
            } else if (code <= 1) { /* an id: a JSON integer of at most 18 digits */
                p = put_id(p, code == 0 ? o->img + k : o->cat + k);
                if (!p) goto done;
            } else if (code == 3) {
                p = put_float(p, o->score + k, 5 * (int64_t)k + 4, o);
                if (!p) goto done;
            } else { /* bbox: an array of 4 numbers */
                if (*p != '[') goto done;
                p = ws(p + 1);
                for (int j = 0; j < 4; j++) {
                    if (j) {
                        p = ws(p);
                        if (*p != ',') goto done;
                        p = ws(p + 1);
                    }
                    p = put_float(p, o->box + 4 * k + j, 5 * (int64_t)k + j, o);
                    if (!p) goto done;
                }
                p = ws(p);
                if (*p != ']') goto done;
                p++;
            }
            if (code >= 0) have |= 1 << code;
            p = ws(p);
            if (*p == ',') {
                p = ws(p + 1);
                continue;
            }
            if (*p == '}') break;
            goto done;
        }
        if (have != 15) goto done;
    record_done:
        if (!bbox_left_to_python(o, nh_before)) { /* else Python converts the row once its numbers are in */
            double *b = o->box + 4 * k;
            if ((b[2] < 0 || b[3] < 0) && o->first_negative < 0) o->first_negative = k;
            b[2] += b[0]; /* xywh -> xyxy, the same IEEE additions as numpy's */
            b[3] += b[1];
        }
        k++;
        p = ws(p + 1);
        if (*p == ',') {
            p = ws(p + 1);
            continue;
        }
        if (*p == ']') {
            p = ws(p + 1);
            if (p == end) status = OK_END; /* only the padding may follow */
            goto done;
        }
        goto done;
    }
done:
    *records = k;
    *offset = p - base;
    *nhard = o->nh;
    return status;
}

static int writable(Py_buffer *b, Py_ssize_t items, Py_ssize_t itemsize, const char *name) {
    if (b->len < items * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, %zd needed", name, b->len, items * itemsize);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(scan_doc,
             "scan(buf, start, first, stop, image_ids, category_ids, boxes, scores, hard) -> "
             "(status, records, offset, hard numbers, first negative)\n\n"
             "buf: the file's bytes followed by PAD NUL bytes. Columns: int64 image_ids and category_ids, float64 "
             "boxes (4 per record: xyxy, or xywh where a bbox number is left to Python) and scores, all with room for the same number of records; hard: int64 "
             "(slot, start, end, is_int) rows of numbers left to Python. Releases the GIL.");

static PyObject *py_scan(PyObject *self, PyObject *args) {
    Py_buffer buf, img, cat, box, score, hard;
    Py_ssize_t start, stop;
    int first;
    if (!PyArg_ParseTuple(args, "y*npnw*w*w*w*w*", &buf, &start, &first, &stop, &img, &cat, &box, &score, &hard))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t size = buf.len - PAD;
    if (!tables_set) {
        PyErr_SetString(PyExc_RuntimeError, "set_tables() first");
        goto out;
    }
    const uint8_t *base = (const uint8_t *)buf.buf;
    if (size < 0 || start < 0 || start > size) {
        PyErr_SetString(PyExc_ValueError, "buf must end with PAD NUL bytes and start lie inside it");
        goto out;
    }
    for (Py_ssize_t i = size; i < buf.len; i++)
        if (base[i]) {
            PyErr_SetString(PyExc_ValueError, "buf must end with PAD NUL bytes");
            goto out;
        }
    Out o;
    o.cap = score.len / 8;
    o.hard_cap = hard.len / 32;
    if (!writable(&img, o.cap, 8, "image_ids") || !writable(&cat, o.cap, 8, "category_ids") ||
        !writable(&box, o.cap, 32, "boxes"))
        goto out;
    o.img = img.buf;
    o.cat = cat.buf;
    o.box = box.buf;
    o.score = score.buf;
    o.hard = hard.buf;
    Py_ssize_t records, offset, nhard;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = scan_records(base, size, start, first, stop, &o, &records, &offset, &nhard);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("innnn", status, records, offset, nhard, o.first_negative);
out:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&img);
    PyBuffer_Release(&cat);
    PyBuffer_Release(&box);
    PyBuffer_Release(&score);
    PyBuffer_Release(&hard);
    return result;
}

PyDoc_STRVAR(set_tables_doc, "set_tables(f_hi, f_lo, f_shift): the rows q = QMIN..QMAX of F = floor(5^q * 2^s) "
                              "in [2^127, 2^128) as uint64 halves, and s as int64 (computed exactly in Python).");

static PyObject *py_set_tables(PyObject *self, PyObject *args) {
    Py_buffer hi, lo, shift;
    if (!PyArg_ParseTuple(args, "y*y*y*", &hi, &lo, &shift)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t rows = QMAX - QMIN + 1;
    if (hi.len != 8 * rows || lo.len != 8 * rows || shift.len != 8 * rows) {
        PyErr_Format(PyExc_ValueError, "tables must have %zd rows of 8 bytes", rows);
    } else {
        memcpy(F_HI, hi.buf, 8 * rows);
        memcpy(F_LO, lo.buf, 8 * rows);
        for (Py_ssize_t i = 0; i < rows; i++) F_SHIFT[i] = (int)((const int64_t *)shift.buf)[i];
        tables_set = 1;
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&hi);
    PyBuffer_Release(&lo);
    PyBuffer_Release(&shift);
    return result;
}

static PyMethodDef methods[] = {{"scan", py_scan, METH_VARARGS, scan_doc},
                                {"set_tables", py_set_tables, METH_VARARGS, set_tables_doc},
                                {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastjson",
                                    "Columnar scan of COCO/LVIS results files (see fastjson.py).", -1, methods};

PyMODINIT_FUNC PyInit__fastjson(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "OK_END", OK_END) || PyModule_AddIntConstant(m, "OK_STOP", OK_STOP) ||
        PyModule_AddIntConstant(m, "DECLINE", DECLINE) || PyModule_AddIntConstant(m, "PAD", PAD) ||
        PyModule_AddIntConstant(m, "QMIN", QMIN) || PyModule_AddIntConstant(m, "QMAX", QMAX)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
