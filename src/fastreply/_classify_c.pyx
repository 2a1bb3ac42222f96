# cython: language_level=3
"""Compiled classifier matcher: the hot path of :func:`fastreply.classify`.

Same answers as :mod:`fastreply._classify_py` (the reference; a differential
test holds them together).  The tables that :mod:`fastreply.classification`
compiles from the rules are copied once into C arrays: an open-addressing
hash of the rules' words, one of the phrase trie's transitions, and the rule
conditions in flat arrays.  A call then reads the reply's bytes once in C
(``_classify.h``: words, phrases, provider tokens, delay, enhanced code),
picks the first rule that holds by walking only the rules its phrases and
its enhanced code's subject point to, and returns one of the
:class:`~fastreply.classification.Classification` objects made when the
matcher was built (a new one only when the text gave a delay).  Nothing is
written after construction: a matcher serves any number of threads.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLong, PyLong_AsLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int8_t, int16_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from fastreply import _common
from fastreply._common import reply_text
from fastreply.commands import Command

__all__ = ["Matcher", "classify"]


cdef extern from "_classify.h" nogil:
    ctypedef struct fr_tables:
        uint32_t word_mask
        const uint32_t* word_hash
        const uint16_t* word_id
        const uint32_t* word_off
        const uint8_t* word_len
        const char* word_pool
        uint32_t trie_mask
        const uint32_t* trie_key
        const uint16_t* trie_next
        const int32_t* state_phrase
        const uint16_t* phrase_provider
        const uint32_t* word_kind
    ctypedef struct fr_found:
        int provider
        long long retry
        int enh_class
        int enh_subject
        int enh_detail
    void fr_scan(const fr_tables* t, const char* p, Py_ssize_t n, int wire, uint64_t* seen,
                 fr_found* out)
    uint32_t fr_word_hash(const unsigned char* w, Py_ssize_t n)
    uint32_t fr_mix(uint32_t key)
    int fr_ctz64(uint64_t x)
    int FR_MAX_WORD


cdef enum:
    MAX_PHRASES = 65536      # bits of the per-call bitset (1024 words of 64)
    SEEN_WORDS = 1024        # MAX_PHRASES / 64
    UNKNOWN_STAGE = 24
    CONNECTION = 3           # SCOPES.index("connection")
    NO_RULE = 1 << 30
    MAX_BLOCKS = 32

# The Reply classes of the parsers, as _common's registry held them when last
# looked at: their replies are read in wire form (see _is_parsed_reply).
cdef tuple _reply_types = ()
cdef object _Command = Command
cdef object _TUPLE_NEW = tuple.__new__
cdef str _NOT_BUILT = "this Matcher has no tables: make one with Matcher(tables)"


cdef bint _is_parsed_reply(object kind) except -1:
    """Whether ``kind`` is the Reply class of a parser (a reply whose ``raw``
    is what the wire carried: ``reply.raw`` is read in wire form)."""
    global _reply_types
    cdef object known
    for known in _reply_types:
        if known is kind:
            return True
    if _common.REPLY_TYPES is _reply_types:
        return False
    _reply_types = _common.REPLY_TYPES  # a parser registered since: look again
    for known in _reply_types:
        if known is kind:
            return True
    return False


cdef uint32_t _capacity(Py_ssize_t n):
    """A power of two at least twice n (load factor at most one half)."""
    cdef uint32_t size = 16
    while size < 2 * n + 2:
        size <<= 1
    return size


@cython.final
cdef class Matcher:
    """The classifier's tables in C arrays, and the function that reads them."""

    cdef fr_tables _t
    cdef void* _blocks[MAX_BLOCKS]
    cdef int _nblocks
    cdef bint _built                    # set last in __init__: the tables are whole
    cdef Py_ssize_t _nrules
    cdef Py_ssize_t _nseen              # 64-bit words of the phrase bitset in use
    cdef int32_t* _phrase_start         # by phrase: where its rules start in _phrase_rules
    cdef uint16_t* _phrase_rules
    cdef int32_t* _subject_start        # by enhanced subject 0-999 (+1)
    cdef uint16_t* _subject_rules
    cdef uint16_t* _plain
    cdef Py_ssize_t _nplain
    cdef int32_t* _code_start           # by rule (+1): its code ranges in _code_lo/_code_hi
    cdef int16_t* _code_lo
    cdef int16_t* _code_hi
    cdef int32_t* _enh_start            # by rule (+1): its enhanced specs, 4 numbers each
    cdef int16_t* _enh
    cdef uint32_t* _commands
    cdef uint16_t* _provider
    cdef int8_t* _scope                 # by rule and default rule: scope number or -1
    cdef int8_t _stage_scope[25]
    cdef Py_ssize_t _nproviders
    cdef tuple _results
    cdef object _command_number
    cdef object _provider_number
    cdef object _tables

    def __cinit__(self):
        self._nblocks = 0
        self._built = False

    def __dealloc__(self):
        cdef int i
        for i in range(self._nblocks):
            PyMem_Free(self._blocks[i])

    cdef void* _alloc(self, Py_ssize_t size) except NULL:
        cdef void* block
        if self._nblocks >= MAX_BLOCKS:
            raise MemoryError("classifier tables: too many blocks")
        if size < 1:
            size = 1
        block = PyMem_Malloc(<size_t>size)
        if block == NULL:
            raise MemoryError()
        memset(block, 0, <size_t>size)
        self._blocks[self._nblocks] = block
        self._nblocks += 1
        return block

    def __init__(self, tables):
        if self._nblocks:
            raise TypeError("a Matcher's tables are set once, when it is built")
        self._tables = tables
        self._build_words(tables.words, tables.word_kind)
        self._build_trie(tables.trie, tables.state_phrase, tables.phrase_provider)
        self._build_rules(tables)
        self._built = True

    cdef int _build_words(self, dict words, list word_kind) except -1:
        cdef Py_ssize_t n = len(words), pool_size = 0, i
        cdef uint32_t cap = _capacity(n), slot, h
        cdef uint32_t* hashes = <uint32_t*>self._alloc(cap * sizeof(uint32_t))
        cdef uint16_t* ids = <uint16_t*>self._alloc(cap * sizeof(uint16_t))
        cdef uint32_t* offsets = <uint32_t*>self._alloc(cap * sizeof(uint32_t))
        cdef uint8_t* lengths = <uint8_t*>self._alloc(cap * sizeof(uint8_t))
        cdef uint32_t* kinds = <uint32_t*>self._alloc((n + 1) * sizeof(uint32_t))
        cdef char* pool
        cdef bytes word
        cdef Py_ssize_t size
        for word in words:
            pool_size += (PyBytes_GET_SIZE(word) + 7) // 8 * 8
        pool = <char*>self._alloc(pool_size)  # zeroed: every word is zero-padded
        pool_size = 0
        for word, wid in words.items():
            size = PyBytes_GET_SIZE(word)
            if not 0 < size <= FR_MAX_WORD or not 0 < wid <= n or wid > 65535:
                raise ValueError(f"bad word table entry {word!r}: {wid}")
            memcpy(pool + pool_size, PyBytes_AS_STRING(word), <size_t>size)
            h = fr_word_hash(<const unsigned char*>pool + pool_size, size)
            slot = h & (cap - 1)
            while ids[slot] != 0:
                slot = (slot + 1) & (cap - 1)
            hashes[slot] = h
            ids[slot] = <uint16_t>wid
            offsets[slot] = <uint32_t>pool_size
            lengths[slot] = <uint8_t>size
            pool_size += (size + 7) // 8 * 8
        if len(word_kind) != n + 1:
            raise ValueError("word_kind must have an entry for every word id")
        for i in range(n + 1):
            kinds[i] = <uint32_t>word_kind[i]
        self._t.word_mask = cap - 1
        self._t.word_hash = hashes
        self._t.word_id = ids
        self._t.word_off = offsets
        self._t.word_len = lengths
        self._t.word_pool = pool
        self._t.word_kind = kinds
        return 0

    cdef int _build_trie(self, dict trie, list state_phrase, list phrase_provider) except -1:
        cdef Py_ssize_t n = len(trie), nstates = len(state_phrase)
        cdef Py_ssize_t nphrases = len(phrase_provider), i
        cdef uint32_t cap = _capacity(n), slot, key
        cdef uint32_t* keys = <uint32_t*>self._alloc(cap * sizeof(uint32_t))
        cdef uint16_t* nexts = <uint16_t*>self._alloc(cap * sizeof(uint16_t))
        cdef int32_t* phrases = <int32_t*>self._alloc(nstates * sizeof(int32_t))
        cdef uint16_t* providers = <uint16_t*>self._alloc(nphrases * sizeof(uint16_t))
        if nphrases > MAX_PHRASES or nstates > 65536:
            raise ValueError(f"too many phrases ({nphrases}) or trie states ({nstates})")
        for k, nxt in trie.items():
            key = <uint32_t>k
            if key == 0 or not 0 < nxt < nstates:
                raise ValueError(f"bad trie entry {k}: {nxt}")
            slot = fr_mix(key) & (cap - 1)
            while keys[slot] != 0:
                slot = (slot + 1) & (cap - 1)
            keys[slot] = key
            nexts[slot] = <uint16_t>nxt
        for i in range(nstates):
            phrases[i] = <int32_t>state_phrase[i]
            if not -1 <= phrases[i] < nphrases:
                raise ValueError(f"bad phrase number for state {i}")
        for i in range(nphrases):
            providers[i] = <uint16_t>phrase_provider[i]
        self._t.trie_mask = cap - 1
        self._t.trie_key = keys
        self._t.trie_next = nexts
        self._t.state_phrase = phrases
        self._t.phrase_provider = providers
        self._nseen = (nphrases + 63) // 64
        return 0

    cdef int _build_rules(self, tables) except -1:
        cdef list phrase_rules = tables.phrase_rules
        cdef Py_ssize_t nphrases = len(phrase_rules), nrules = len(tables.rule_codes)
        cdef Py_ssize_t i, k, total
        if nrules + 4 > 65535:
            raise ValueError("too many rules")
        self._nrules = nrules
        # Phrases -> rules
        total = sum(len(r) for r in phrase_rules)
        self._phrase_start = <int32_t*>self._alloc((nphrases + 1) * sizeof(int32_t))
        self._phrase_rules = <uint16_t*>self._alloc(total * sizeof(uint16_t))
        k = 0
        for i in range(nphrases):
            self._phrase_start[i] = <int32_t>k
            for rule in phrase_rules[i]:
                self._phrase_rules[k] = <uint16_t>rule
                k += 1
        self._phrase_start[nphrases] = <int32_t>k
        # Enhanced subject -> rules without phrases
        by_subject = tables.by_subject
        total = sum(len(r) for r in by_subject.values())
        self._subject_start = <int32_t*>self._alloc(1001 * sizeof(int32_t))
        self._subject_rules = <uint16_t*>self._alloc(total * sizeof(uint16_t))
        k = 0
        for i in range(1000):
            self._subject_start[i] = <int32_t>k
            for rule in by_subject.get(i, ()):
                self._subject_rules[k] = <uint16_t>rule
                k += 1
        self._subject_start[1000] = <int32_t>k
        plain = tables.plain
        self._nplain = len(plain)
        self._plain = <uint16_t*>self._alloc(self._nplain * sizeof(uint16_t))
        for i in range(self._nplain):
            self._plain[i] = <uint16_t>plain[i]
        # Conditions, by rule
        rule_codes = tables.rule_codes
        rule_enhanced = tables.rule_enhanced
        total = sum(len(c) for c in rule_codes)
        self._code_start = <int32_t*>self._alloc((nrules + 1) * sizeof(int32_t))
        self._code_lo = <int16_t*>self._alloc(total * sizeof(int16_t))
        self._code_hi = <int16_t*>self._alloc(total * sizeof(int16_t))
        k = 0
        for i in range(nrules):
            self._code_start[i] = <int32_t>k
            for lo, hi in rule_codes[i]:
                self._code_lo[k] = <int16_t>lo
                self._code_hi[k] = <int16_t>hi
                k += 1
        self._code_start[nrules] = <int32_t>k
        total = sum(len(e) for e in rule_enhanced)
        self._enh_start = <int32_t*>self._alloc((nrules + 1) * sizeof(int32_t))
        self._enh = <int16_t*>self._alloc(4 * total * sizeof(int16_t))
        k = 0
        for i in range(nrules):
            self._enh_start[i] = <int32_t>k
            for spec in rule_enhanced[i]:
                self._enh[4 * k] = <int16_t>spec[0]
                self._enh[4 * k + 1] = <int16_t>spec[1]
                self._enh[4 * k + 2] = <int16_t>spec[2]
                self._enh[4 * k + 3] = <int16_t>spec[3]
                k += 1
        self._enh_start[nrules] = <int32_t>k
        self._commands = <uint32_t*>self._alloc(nrules * sizeof(uint32_t))
        self._provider = <uint16_t*>self._alloc(nrules * sizeof(uint16_t))
        for i in range(nrules):
            self._commands[i] = <uint32_t>tables.rule_commands[i]
            self._provider[i] = <uint16_t>tables.rule_provider[i]
        rule_scope = tables.rule_scope
        if len(rule_scope) != nrules + 4 or len(tables.results) != nrules + 4:
            raise ValueError("scopes and results need an entry for every rule and default")
        self._scope = <int8_t*>self._alloc((nrules + 4) * sizeof(int8_t))
        for i in range(nrules + 4):
            self._scope[i] = <int8_t>rule_scope[i]
        if len(tables.stage_scope) != 25:
            raise ValueError("stage_scope needs 25 entries")
        for i in range(25):
            self._stage_scope[i] = <int8_t>tables.stage_scope[i]
        self._nproviders = len(tables.provider_names) - 1
        self._results = tuple(
            tuple(slot for slot in row) for row in tables.results
        )
        for row in self._results:
            if len(row) != 20:
                raise ValueError("a result row has 20 slots (4 classes x 5 scopes)")
            for slot in row:
                if slot is not None and len(slot) != self._nproviders + 1:
                    raise ValueError("a result slot has one entry per provider")
        self._command_number = tables.command_number
        self._provider_number = tables.provider_number
        return 0

    def classify(self, reply, command=None, provider=None):
        """Classify one reply; ``command`` and ``provider`` as for
        :func:`fastreply.classify`."""
        return self._classify(reply, command, provider)

    cdef object _classify(self, object reply, object command, object provider):
        cdef object kind = type(reply)
        cdef object data, number, result, slot
        cdef long code
        cdef int wire, overflow = 0, cmd, given, prov, klass, scope, best
        cdef fr_found found
        cdef uint64_t seen[SEEN_WORDS]
        if not self._built:  # made with __new__, or its __init__ failed: no tables to read
            raise TypeError(_NOT_BUILT)
        # The reply: the wire form of a parsed reply, or smtplib's message.
        if _is_parsed_reply(kind):
            code = reply.code
            data = reply.raw
            wire = 1
        else:
            code = -2
            if kind is tuple and PyTuple_GET_SIZE(reply) == 2:
                number = <object>PyTuple_GET_ITEM(reply, 0)
                data = <object>PyTuple_GET_ITEM(reply, 1)
                if type(number) is int and type(data) is bytes:
                    code = PyLong_AsLongAndOverflow(number, &overflow)
                    if overflow or code < -1 or code > 999:
                        code = -2
            if code == -2:
                number, data = reply_text(reply)  # the reference's checks and errors
                code = number
            wire = 0
        # The command and the provider.
        if command is None:
            cmd = UNKNOWN_STAGE
        elif type(command) is _Command:
            cmd = <int>PyLong_AsLong(command)
        else:
            cmd = self._command_number(command)
        if provider is None:
            given = 0
        else:
            given = self._provider_number(provider)
        # The text, once.
        memset(seen, 0, <size_t>self._nseen * sizeof(uint64_t))
        fr_scan(&self._t, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), wire, seen, &found)
        prov = given if given else found.provider
        best = self._select(seen, code, cmd, found.enh_class, found.enh_subject,
                            found.enh_detail, prov)
        if 100 <= code < 400:
            klass = 0
        elif 400 <= code < 500:
            klass = 1
        elif 500 <= code < 600:
            klass = 2
        else:
            klass = 3
        if best < 0:
            best = <int>self._nrules + klass
        scope = self._scope[best]
        if scope < 0:
            scope = CONNECTION if code == 421 else self._stage_scope[cmd]
        slot = <object>PyTuple_GET_ITEM(<object>PyTuple_GET_ITEM(self._results, best),
                                        klass * 5 + scope)
        if slot is None:
            raise RuntimeError(f"no result for rule {best}, class {klass}, scope {scope}")
        result = <object>PyTuple_GET_ITEM(slot, prov)
        if found.retry >= 0:
            result = _TUPLE_NEW(type(result), (result[0], result[1], result[2], found.retry,
                                               result[4], result[5]))
        return result

    cdef int _select(self, const uint64_t* seen, long code, int cmd, int ec, int es, int ed,
                     int prov) noexcept:
        """The first rule (lowest number) whose conditions hold, or -1."""
        cdef int best = NO_RULE, rule, phrase
        cdef Py_ssize_t w, k, stop
        cdef uint64_t bits
        for w in range(self._nseen):
            bits = seen[w]
            while bits:
                phrase = <int>(w * 64) + fr_ctz64(bits)
                bits &= bits - 1
                stop = self._phrase_start[phrase + 1]
                for k in range(self._phrase_start[phrase], stop):
                    rule = self._phrase_rules[k]
                    if rule >= best:
                        break
                    if self._holds(rule, code, cmd, ec, es, ed, prov):
                        best = rule
                        break
        for k in range(self._nplain):
            rule = self._plain[k]
            if rule >= best:
                break
            if self._holds(rule, code, cmd, ec, es, ed, prov):
                best = rule
                break
        if ec != 0 and es < 1000:
            stop = self._subject_start[es + 1]
            for k in range(self._subject_start[es], stop):
                rule = self._subject_rules[k]
                if rule >= best:
                    break
                if self._holds(rule, code, cmd, ec, es, ed, prov):
                    best = rule
                    break
        return best if best != NO_RULE else -1

    cdef inline bint _holds(self, int rule, long code, int cmd, int ec, int es, int ed,
                            int prov) noexcept:
        cdef Py_ssize_t k, start = self._code_start[rule], stop = self._code_start[rule + 1]
        cdef bint ok
        cdef int wanted
        if start != stop:
            ok = False
            for k in range(start, stop):
                if self._code_lo[k] <= code <= self._code_hi[k]:
                    ok = True
                    break
            if not ok:
                return False
        if not (self._commands[rule] >> cmd) & 1:
            return False
        start = self._enh_start[rule]
        stop = self._enh_start[rule + 1]
        if start != stop:
            if ec == 0:
                return False
            ok = False
            for k in range(start, stop):
                if ((self._enh[4 * k] == 0 or self._enh[4 * k] == ec)
                        and self._enh[4 * k + 1] == es
                        and self._enh[4 * k + 2] <= ed <= self._enh[4 * k + 3]):
                    ok = True
                    break
            if not ok:
                return False
        wanted = self._provider[rule]
        return wanted == 0 or wanted == prov


cdef Matcher _DEFAULT = None


def _set_default(Matcher matcher):
    """The matcher :func:`classify` uses (set once, by fastreply.classification)."""
    global _DEFAULT
    if _DEFAULT is not None:
        raise RuntimeError("the default classifier is set once")
    _DEFAULT = matcher


def classify(reply, command=None, *, provider=None):
    """What ``reply`` means for the sender: a
    :class:`~fastreply.classification.Classification`.

    ``reply`` is a :class:`~fastreply.Reply` (either implementation) or the
    ``(code, message)`` pair ``smtplib`` returns; ``command`` the command it
    answers (a :class:`~fastreply.commands.Command`, its name, the command
    line, or None when unknown); ``provider`` a provider name or the MX host
    name the reply came from (None: recognised from the reply when it can be).
    Uses the shipped rules; :class:`~fastreply.classification.Classifier`
    makes classifiers with other rules.
    """
    cdef Matcher matcher = _DEFAULT
    if matcher is None:
        raise RuntimeError("fastreply.classification sets the default classifier")
    return matcher._classify(reply, command, provider)
