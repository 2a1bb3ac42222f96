/* The C helpers of the compiled reply parser (_parser_c.pyx).
 *
 * Included by the generated _parser_c.c after Python.h.  Everything here is
 * static and works on raw bytes: finding the line feeds of a block, checking
 * the common form of a line in a few instructions, reading a code.  The
 * rules themselves (which line is good, which error a bad one gets) are the
 * pure-Python reference's, _parser_py.ReplyParser._line; check_line() in
 * _parser_c.pyx follows them in the same order, and fastreply_quick_line()
 * below only ever says yes to lines that check_line() accepts.
 */
#ifndef FASTREPLY_PARSER_H
#define FASTREPLY_PARSER_H

#include <stdint.h>
#include <string.h>

/* Free-threaded builds count the references to an object that another
   thread made with atomic operations on a shared counter: ints handed
   out from CODES by every thread (those above 256 are not immortal)
   would bounce that counter's cache line between cores.  There,
   feed_codes() gives each parser ints of its own (_code_int in
   _parser_c.pyx). */
#ifdef Py_GIL_DISABLED
#define FASTREPLY_SHARED_CODES 0
#else
#define FASTREPLY_SHARED_CODES 1
#endif
#define fastreply_tuple_items(t) (&PyTuple_GET_ITEM((t), 0))

/* The first LF in p[0:n], or NULL.  Reply lines are short, and a libc
   call per line costs more than the search: the first 32 bytes are
   searched eight at a time inline, the rest by memchr. */
static inline const char *fastreply_find_lf(const char *p, Py_ssize_t n)
{
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    Py_ssize_t i = 0;
    Py_ssize_t head = n < 32 ? n : 32;
    for (; i + 8 <= head; i += 8) {
        uint64_t word, hit;
        memcpy(&word, p + i, 8);
        word ^= 0x0A0A0A0A0A0A0A0AULL;  /* LF bytes become zero */
        hit = (word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL;
        if (hit) {
            /* The lowest flagged byte is the first LF (exact on
               little-endian: borrows only run upwards). */
            return p + i + (__builtin_ctzll(hit) >> 3);
        }
    }
    if (i < n) {
        return (const char *)memchr(p + i, 10, (size_t)(n - i));
    }
    return NULL;
#else
    return n > 0 ? (const char *)memchr(p, 10, (size_t)n) : NULL;
#endif
}

/* A bitmap of the LF bytes in p[0:64]: bit i set when p[i] is LF. */
#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
static inline uint64_t fastreply_lf_mask64(const char *p)
{
    const __m128i lf = _mm_set1_epi8(10);
    uint64_t m0 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), lf));
    uint64_t m1 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), lf));
    uint64_t m2 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), lf));
    uint64_t m3 = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), lf));
    return m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
}
#elif defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>
static inline uint64_t fastreply_lf_mask16(const char *p)
{
    /* Narrow the 0x00/0xFF lanes to nibbles: 4 bits per byte, then keep one. */
    uint8x16_t eq = vceqq_u8(vld1q_u8((const uint8_t *)p), vdupq_n_u8(10));
    uint64_t nib = vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(eq), 4)), 0);
    nib &= 0x1111111111111111ULL;  /* bit 4i set when byte i is LF */
    /* Gather bit 4i to bit i. */
    nib = (nib | (nib >> 3)) & 0x0303030303030303ULL;
    nib = (nib | (nib >> 6)) & 0x000F000F000F000FULL;
    nib = (nib | (nib >> 12)) & 0x000000FF000000FFULL;
    nib = (nib | (nib >> 24)) & 0xFFFFULL;
    return nib;
}
static inline uint64_t fastreply_lf_mask64(const char *p)
{
    return fastreply_lf_mask16(p) | (fastreply_lf_mask16(p + 16) << 16)
         | (fastreply_lf_mask16(p + 32) << 32) | (fastreply_lf_mask16(p + 48) << 48);
}
#else
static inline uint64_t fastreply_lf_mask64(const char *p)
{
    uint64_t mask = 0;
    int i;
    for (i = 0; i < 64; i++) {
        mask |= (uint64_t)(p[i] == 10) << i;
    }
    return mask;
}
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static inline unsigned int fastreply_ctz64(uint64_t x)
{
    unsigned long i;
    _BitScanForward64(&i, x);
    return (unsigned int)i;
}
#else
/* (as unsigned: 0 to 63, widened to an index for free) */
#define fastreply_ctz64(x) ((unsigned int)__builtin_ctzll(x))
#endif

/* The same for the last n < 64 bytes of a chunk (once a chunk: kept out
   of line so that the hot loop needs no stack buffer). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#elif defined(_MSC_VER)
__declspec(noinline)
#endif
static uint64_t fastreply_lf_mask_tail(const char *p, Py_ssize_t n)
{
    char tail[64];
    memset(tail, 0, sizeof tail);
    memcpy(tail, p, (size_t)n);
    return fastreply_lf_mask64(tail);
}

/* The common case of a line, checked in a few instructions: p[start:lf+1]
   (at most max_line bytes: the caller checks) has at least four bytes
   before its LF, starts with three digits (the first 1-5; in strict mode
   2-5 then 0-5, and the line ends in CRLF) and a space or a hyphen.
   Returns 1 (last line) or 0 (more follow), or -1 when the full check
   must decide (which then names any error). */
static inline int fastreply_quick_line(const char *p, Py_ssize_t start, Py_ssize_t lf,
                                       int strict)
{
    const unsigned char *u = (const unsigned char *)p + start;
    uint32_t head, x, lo, hi;
    if (lf - start < 4) {
        return -1;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ || defined(_M_X64) || defined(_M_ARM64)
    memcpy(&head, u, 4);  /* one load: the four bytes are inside the line */
#else
    head = (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) | ((uint32_t)u[3] << 24);
#endif
    /* The three digits, each in its range, at once: adding 0x80 - low to
       a byte sets its top bit when it is low or more, adding 0x7F - high
       when it is above high.  A byte of 0x80 or more fails one of the two
       (from 0xB0 up the first wraps round).  Its carry may reach the next
       byte, but the lowest bad byte gets none from the good bytes below
       it, so its own test is exact.  Lenient: 1-5, 0-9, 0-9.  Strict:
       2-5, 0-5, 0-9. */
    x = head & 0xFFFFFFu;
    lo = strict ? 0x50504Eu : 0x50504Fu;
    hi = strict ? 0x464A4Au : 0x46464Au;
    if ((((x + lo) ^ 0x808080u) | (x + hi)) & 0x808080u) {
        return -1;
    }
    if (strict && p[lf - 1] != 13) {
        return -1;
    }
    head >>= 24;
    return head == '-' ? 0 : (head == ' ' ? 1 : -1);  /* most lines go on */
}

/* The largest byte of p[0:n] (0 if n is 0): a loop compilers vectorise. */
static unsigned char fastreply_max_byte(const unsigned char *p, Py_ssize_t n)
{
    unsigned char top = 0;
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        top = p[i] > top ? p[i] : top;
    }
    return top;
}

/* The code in the first three bytes of a line already checked. */
static inline int fastreply_code_at(const char *p)
{
    return (p[0] - 48) * 100 + (p[1] - 48) * 10 + (p[2] - 48);
}

#endif /* FASTREPLY_PARSER_H */
