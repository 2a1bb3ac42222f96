/* The C core of fastreply._classify_c: one pass over the words of a reply.
 *
 * Same semantics as fastreply/_classify_py.py (the reference), step for step:
 *   - lines: in "wire" mode the reply as received ("550-text\r\n550 text\r\n"),
 *     whose first four bytes a line (code and separator) are skipped; in "text"
 *     mode the lines of smtplib's message, separated by LF;
 *   - an enhanced status code at the start of a line is not text (the first
 *     line's is returned);
 *   - a word is a run of ASCII letters, digits and bytes 0x80-0xFF, lower-cased
 *     (ASCII only); words longer than FR_MAX_WORD are unknown;
 *   - every word steps the phrase trie from the root and from each state still
 *     active (all phrase starts followed at once); a state that ends a phrase
 *     sets its bit in the caller's bitset; the first provider token in the
 *     text names the provider (two ending on the same word: the lower number);
 *   - "<trigger> <number> <unit>" and "<trigger> <h>:<m>:<s>" give the delay.
 * Nothing here allocates or touches Python objects: the tables are read-only
 * after the matcher is built, all state lives on the caller's stack.
 */
#ifndef FASTREPLY_CLASSIFY_H
#define FASTREPLY_CLASSIFY_H

#include <stdint.h>
#include <string.h>

#define FR_MAX_WORD 64       /* longest word a rule may use (MAX_WORD_LENGTH) */
#define FR_MAX_DEPTH 16      /* most words in a phrase (MAX_PHRASE_WORDS) */
#define FR_MAX_DIGITS 6      /* longest number read as a delay */

typedef struct {
    /* Words: open addressing over FNV-1a hashes; word_id 0 marks an empty slot. */
    uint32_t word_mask;
    const uint32_t *word_hash;
    const uint16_t *word_id;
    const uint32_t *word_off;
    const uint8_t *word_len;
    const char *word_pool;
    /* Trie transitions: key = state << 16 | word id (never 0), open addressing. */
    uint32_t trie_mask;
    const uint32_t *trie_key;
    const uint16_t *trie_next;
    const int32_t *state_phrase;    /* by state: phrase number, or -1 */
    const uint16_t *phrase_provider; /* by phrase: provider number, or 0 */
    const uint32_t *word_kind;      /* by word id: 0, 1 (delay trigger), 1 + seconds per unit */
} fr_tables;

typedef struct {
    int provider;            /* first provider named in the text, or 0 */
    long long retry;         /* the delay in seconds, or -1 */
    int enh_class;           /* the first line's enhanced code; class 0: none */
    int enh_subject;
    int enh_detail;
} fr_found;

/* Byte classes: 0 separator, 1 upper-case letter, 2 other word byte, 3 digit. */
static const uint8_t fr_class[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 3,3,3,3,3,3,3,3,3,3,0,0,0,0,0,0,
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,
    0,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,0,0,0,0,0,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
};

/* The lowest set bit of a non-zero word. */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static inline int fr_ctz64(uint64_t x)
{
    unsigned long i;
    _BitScanForward64(&i, x);
    return (int)i;
}
#else
#define fr_ctz64(x) ((int)__builtin_ctzll(x))
#endif

#define FR_FNV_BASIS 2166136261u
#define FR_FNV_PRIME 16777619u

static inline uint32_t fr_fnv(const unsigned char *w, Py_ssize_t n)
{
    uint32_t h = FR_FNV_BASIS;
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        h = (h ^ w[i]) * FR_FNV_PRIME;
    }
    return h;
}

static inline uint32_t fr_mix(uint32_t key)
{
    key ^= key >> 16;
    key *= 0x45d9f3bu;
    key ^= key >> 16;
    return key;
}

static inline int fr_word_lookup(const fr_tables *t, const unsigned char *w, Py_ssize_t n,
                                 uint32_t h)
{
    uint32_t slot = h & t->word_mask;
    uint16_t id;
    while ((id = t->word_id[slot]) != 0) {
        if (t->word_hash[slot] == h && t->word_len[slot] == n
                && memcmp(t->word_pool + t->word_off[slot], w, (size_t)n) == 0) {
            return id;
        }
        slot = (slot + 1) & t->word_mask;
    }
    return 0;
}

static inline int fr_trie_next(const fr_tables *t, uint32_t state, uint32_t wid)
{
    uint32_t key = state << 16 | wid;
    uint32_t slot = fr_mix(key) & t->trie_mask;
    uint32_t k;
    while ((k = t->trie_key[slot]) != 0) {
        if (k == key) {
            return t->trie_next[slot];
        }
        slot = (slot + 1) & t->trie_mask;
    }
    return 0;
}

/* A number of one to three digits without a leading zero ("0" itself is
   fine) at p[0:n]; returns its length, or 0. */
static inline Py_ssize_t fr_number(const char *p, Py_ssize_t n, int *value)
{
    Py_ssize_t i = 0;
    int v = 0;
    if (n < 1 || p[0] < '0' || p[0] > '9') {
        return 0;
    }
    if (p[0] == '0') {
        *value = 0;
        return 1;
    }
    while (i < n && i < 3 && p[i] >= '0' && p[i] <= '9') {
        v = v * 10 + (p[i] - '0');
        i++;
    }
    *value = v;
    return i;
}

/* An enhanced status code at the start of p[0:n], followed by the end, a
   space, a tab, CR or LF (fastreply.enhanced's grammar); returns its length,
   or 0. */
static inline Py_ssize_t fr_enhanced(const char *p, Py_ssize_t n, int *cls, int *subject,
                                     int *detail)
{
    Py_ssize_t i, k;
    char c;
    if (n < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.') {
        return 0;
    }
    i = 2;
    k = fr_number(p + i, n - i, subject);
    if (k == 0) {
        return 0;
    }
    i += k;
    if (i >= n || p[i] != '.') {
        return 0;
    }
    i++;
    k = fr_number(p + i, n - i, detail);
    if (k == 0) {
        return 0;
    }
    i += k;
    if (i < n) {
        c = p[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return 0;
        }
    }
    *cls = p[0] - '0';
    return i;
}

/* The words of p[0:n]: sets the bits of the phrases found in `seen` (which
   the caller has cleared) and fills `out`. */
static void fr_scan(const fr_tables *t, const char *p, Py_ssize_t n, int wire,
                    uint64_t *seen, fr_found *out)
{
    const unsigned char *u = (const unsigned char *)p;
    uint16_t active[FR_MAX_DEPTH + 1];
    uint16_t following[FR_MAX_DEPTH + 1];
    unsigned char word[FR_MAX_WORD];
    int nactive = 0, nfollowing, a, line = 0, cls, subject, detail, wid, nxt, phrase, named;
    int colon, c1 = 0;
    uint32_t kind, k1 = 0, k2 = 0, k3 = 0, h;
    long long value, v1 = -1, v2 = -1;
    Py_ssize_t i = 0, end, j, start, prev_end, len, index = 0, provider_at = -1;
    const char *lf;
    int digits;

    out->provider = 0;
    out->retry = -1;
    out->enh_class = 0;
    out->enh_subject = 0;
    out->enh_detail = 0;
    while (i < n) {
        lf = (const char *)memchr(p + i, '\n', (size_t)(n - i));
        end = lf != NULL ? lf - p : n;
        j = i;
        if (wire) {
            j += end - i < 4 ? end - i : 4;
        }
        len = fr_enhanced(p + j, end - j, &cls, &subject, &detail);
        if (len > 0 && line == 0) {
            out->enh_class = cls;
            out->enh_subject = subject;
            out->enh_detail = detail;
        }
        j += len;
        prev_end = -1;
        for (;;) {
            while (j < end && fr_class[u[j]] == 0) {
                j++;
            }
            if (j >= end) {
                break;
            }
            start = j;
            colon = prev_end >= 0 && start == prev_end + 1 && p[prev_end] == ':';
            h = FR_FNV_BASIS;
            len = 0;
            digits = 1;
            value = 0;
            for (; j < end; j++) {
                unsigned char b = u[j];
                uint8_t bc = fr_class[b];
                if (bc == 0) {
                    break;
                }
                if (bc == 1) {
                    b = (unsigned char)(b + 32);
                }
                if (bc == 3) {
                    if (len < FR_MAX_DIGITS) {
                        value = value * 10 + (b - '0');
                    }
                } else {
                    digits = 0;
                }
                if (len < FR_MAX_WORD) {
                    word[len] = b;
                }
                h = (h ^ b) * FR_FNV_PRIME;
                len++;
            }
            prev_end = j;
            if (!digits || len > FR_MAX_DIGITS) {
                value = -1;
            }
            wid = len <= FR_MAX_WORD ? fr_word_lookup(t, word, len, h) : 0;
            kind = t->word_kind[wid];
            nfollowing = 0;
            if (wid != 0) {
                for (a = -1; a < nactive; a++) {
                    nxt = fr_trie_next(t, a < 0 ? 0u : (uint32_t)active[a], (uint32_t)wid);
                    if (nxt == 0) {
                        continue;
                    }
                    following[nfollowing++] = (uint16_t)nxt;
                    phrase = t->state_phrase[nxt];
                    if (phrase >= 0) {
                        seen[phrase >> 6] |= (uint64_t)1 << (phrase & 63);
                        named = t->phrase_provider[phrase];
                        if (named != 0 && (out->provider == 0
                                || (provider_at == index && named < out->provider))) {
                            out->provider = named;
                            provider_at = index;
                        }
                    }
                }
            }
            if (nfollowing > FR_MAX_DEPTH) {
                nfollowing = FR_MAX_DEPTH;  /* cannot happen: phrases have at most FR_MAX_DEPTH words */
            }
            memcpy(active, following, (size_t)nfollowing * sizeof(uint16_t));
            nactive = nfollowing;
            if (out->retry < 0) {
                if (kind > 1 && v1 >= 0 && k2 == 1) {
                    out->retry = v1 * (long long)(kind - 1);     /* "in 5 minutes" */
                } else if (value >= 0 && colon && v1 >= 0 && c1 && v2 >= 0 && k3 == 1) {
                    out->retry = v2 * 3600 + v1 * 60 + value;    /* "in 00:05:00" */
                }
            }
            k3 = k2;
            k2 = k1;
            v2 = v1;
            k1 = kind;
            v1 = value;
            c1 = colon;
            index++;
        }
        line++;
        i = end + 1;
    }
}

#endif
