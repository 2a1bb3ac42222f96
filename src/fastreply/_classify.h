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
    /* Words: open addressing over fr_word_hash; word_id 0 marks an empty slot.
       The pool holds each word at a multiple of 8, zero-padded. */
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

/* A word byte (ASCII letter or digit, or 0x80-0xFF) lower-cased; 0 for a
   separator (every other byte). */
static const uint8_t fr_word_byte[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    48,49,50,51,52,53,54,55,56,57,0,0,0,0,0,0,
    0,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,
    112,113,114,115,116,117,118,119,120,121,122,0,0,0,0,0,
    0,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,
    112,113,114,115,116,117,118,119,120,121,122,0,0,0,0,0,
    128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,
    144,145,146,147,148,149,150,151,152,153,154,155,156,157,158,159,
    160,161,162,163,164,165,166,167,168,169,170,171,172,173,174,175,
    176,177,178,179,180,181,182,183,184,185,186,187,188,189,190,191,
    192,193,194,195,196,197,198,199,200,201,202,203,204,205,206,207,
    208,209,210,211,212,213,214,215,216,217,218,219,220,221,222,223,
    224,225,226,227,228,229,230,231,232,233,234,235,236,237,238,239,
    240,241,242,243,244,245,246,247,248,249,250,251,252,253,254,255,
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

/* The hash of a word w[0:n] whose bytes past n, up to the next multiple of
   eight, are zero: eight bytes at a time. */
static inline uint32_t fr_word_hash(const unsigned char *w, Py_ssize_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull, chunk;
    Py_ssize_t i;
    for (i = 0; i < n; i += 8) {
        memcpy(&chunk, w + i, 8);
        h = (h ^ chunk) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

/* Two zero-padded words of the same length n: equal? */
static inline int fr_same_word(const unsigned char *a, const unsigned char *b, Py_ssize_t n)
{
    uint64_t x, y;
    Py_ssize_t i;
    for (i = 0; i < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            return 0;
        }
    }
    return 1;
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
                && fr_same_word((const unsigned char *)t->word_pool + t->word_off[slot], w, n)) {
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
    uint16_t states_a[FR_MAX_DEPTH + 1], states_b[FR_MAX_DEPTH + 1];
    uint16_t *active = states_a, *following = states_b, *swap;
    unsigned char word[FR_MAX_WORD + 8];
    int nactive = 0, nfollowing, a, line = 0, cls, subject, detail, wid, nxt, phrase, named;
    int colon, c1 = 0;
    uint32_t kind, k1 = 0, k2 = 0, k3 = 0, h = 0;
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
            while (j < end && fr_word_byte[u[j]] == 0) {
                j++;
            }
            if (j >= end) {
                break;
            }
            start = j;
            colon = prev_end >= 0 && start == prev_end + 1 && p[prev_end] == ':';
            digits = 1;
            len = 0;
            for (; j < end; j++) {
                /* fr_word_byte: the byte lower-cased, 0 for a separator. */
                unsigned char b = fr_word_byte[u[j]];
                if (b == 0) {
                    break;
                }
                digits &= (unsigned)(b - '0') < 10u;
                if (len < FR_MAX_WORD) {
                    word[len] = b;
                }
                len++;
            }
            prev_end = j;
            value = -1;
            if (digits && len <= FR_MAX_DIGITS) {
                Py_ssize_t d;
                value = 0;
                for (d = 0; d < len; d++) {
                    value = value * 10 + (word[d] - '0');
                }
            }
            if (len <= FR_MAX_WORD) {
                uint64_t zero = 0;
                memcpy(word + len, &zero, 8);  /* zero-pad the last eight-byte chunk */
                h = fr_word_hash(word, len);
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
            swap = active;
            active = following;
            following = swap;
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
