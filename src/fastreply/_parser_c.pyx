# cython: language_level=3
"""Compiled implementation of the reply parser.

Same public surface and behaviour as :mod:`fastreply._parser_py` (the
reference).  The hot loop works on a ``const char*`` into the caller's
buffer: a complete reply is copied once, into the ``bytes`` object that the
:class:`Reply` keeps; its lines are split only when someone asks for them.
Only an incomplete reply at the end of a chunk is copied into the parser's
own buffer, whose size the limits bound.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongAndOverflow
from cpython.sequence cimport PySequence_GetItem
from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcpy

from fastreply import _common
from fastreply._common import (
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_REPLY_LINES,
    INCOMPLETE,
    NO_COPY,
    REPLY_IMMUTABLE,
    TOO_LONG,
    canonical,
    check_limit,
    check_log_args,
    check_reply_args,
    data_type_error,
    log_ended,
    log_window,
    not_a_command,
    stopped_error,
    wire_error,
)

__all__ = ["Reply", "ReplyParser", "CodeMasks", "DEFAULT_MAX_LINE_LENGTH", "DEFAULT_MAX_REPLY_LINES"]

cdef bytes EMPTY = b""
# The int objects for every possible code, so that feed_codes() allocates none.
cdef tuple CODES = tuple(range(1000))

cdef extern from "_parser.h":
    # Free-threaded builds: each parser makes its own ints for feed_codes().
    const bint SHARED_CODES "FASTREPLY_SHARED_CODES"
    PyObject** tuple_items "fastreply_tuple_items"(tuple t)
    # Finding the lines: the first LF of p[0:n]; a bitmap of the LFs of a
    # 64-byte block (of the last n < 64 bytes: lf_mask_tail); its lowest bit.
    const char* find_lf "fastreply_find_lf"(const char* p, Py_ssize_t n) noexcept nogil
    uint64_t lf_mask64 "fastreply_lf_mask64"(const char* p) noexcept nogil
    uint64_t lf_mask_tail "fastreply_lf_mask_tail"(const char* p, Py_ssize_t n) noexcept nogil
    unsigned int ctz64 "fastreply_ctz64"(uint64_t x) noexcept nogil
    # Checking a line of the common form: 1 (last line), 0 (more follow) or
    # -1 (check_line decides); the code of a line already checked.
    int quick_line "fastreply_quick_line"(const char* p, Py_ssize_t start, Py_ssize_t lf,
                                          int strict) noexcept nogil
    int code_at "fastreply_code_at"(const char* p) noexcept nogil
    # The largest byte of p[0:n] (a command log's highest number).
    unsigned char max_byte "fastreply_max_byte"(const unsigned char* p, Py_ssize_t n) noexcept nogil

cdef enum:
    # The codes a parsed reply can have whose ints CPython does not cache
    # (and make immortal): 257 to 599.
    OWN_CODES_FROM = 257
    OWN_CODES_END = 600

# CODES' items, read without touching the tuple's own reference count.
cdef PyObject** CODE_ITEMS = tuple_items(CODES)
cdef object _enhanced_parse = None
cdef object _classify = None

# Results of check_line: 1 and 0 are "last line" / "more lines follow", a
# negative number is the kind of error (the kinds of _common.WIRE_ERRORS, negated).
cdef enum:
    ERR_TOO_LONG = -1
    ERR_BARE_LF = -2
    ERR_NO_CODE = -3
    ERR_SEPARATOR = -4
    ERR_STRICT_RANGE = -5
    ERR_RANGE = -6
    ERR_INCONSISTENT = -7
    ERR_TOO_MANY = -8

# Give the parser buffer back to the allocator when a reply this big is done.
cdef Py_ssize_t KEEP_CAPACITY = 64 * 1024


cdef struct LineState:
    Py_ssize_t max_line    # limits
    Py_ssize_t max_lines
    bint strict
    Py_ssize_t nlines      # complete lines of the reply being read
    int first_code         # code of its first line
    int last_code          # code of its latest line


cdef inline bint is_digit(char c) noexcept nogil:
    return <unsigned char>(c - 48) <= 9


cdef inline int check_line(const char* p, Py_ssize_t start, Py_ssize_t lf,
                           LineState* state) noexcept nogil:
    """Check the line p[start:lf+1] (lf is the index of its LF) and count it.
    Return 1 for a last line, 0 when more lines follow, ERR_* when it is bad.
    The checks run in the reference implementation's order."""
    cdef Py_ssize_t end = lf
    cdef Py_ssize_t size
    cdef char c0, c1, c2, sep
    cdef int last, code
    if lf + 1 - start > state.max_line:
        return ERR_TOO_LONG
    if end > start and p[end - 1] == b'\r':
        end -= 1
    elif state.strict:
        return ERR_BARE_LF
    size = end - start
    if size < 3:
        return ERR_NO_CODE
    c0 = p[start]
    c1 = p[start + 1]
    c2 = p[start + 2]
    if not (is_digit(c0) and is_digit(c1) and is_digit(c2)):
        return ERR_NO_CODE
    if size == 3:
        last = 1
    else:
        sep = p[start + 3]
        if sep == b' ':
            last = 1
        elif sep == b'-':
            last = 0
        else:
            return ERR_SEPARATOR
    if state.strict:
        if c0 < b'2' or c0 > b'5' or c1 > b'5':
            return ERR_STRICT_RANGE
    elif c0 < b'1' or c0 > b'5':
        return ERR_RANGE
    code = (c0 - 48) * 100 + (c1 - 48) * 10 + (c2 - 48)
    if state.nlines == 0:
        state.first_code = code
    elif state.strict and code != state.first_code:
        return ERR_INCONSISTENT
    state.nlines += 1
    if not last and state.nlines >= state.max_lines:
        return ERR_TOO_MANY
    state.last_code = code
    return last


cdef tuple _split_raw(bytes raw):
    """The text of each line of a validated wire reply."""
    cdef const char* p = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t start = 0, lf, end
    cdef const char* q
    cdef list texts = []
    while start < n:
        q = <const char*>memchr(p + start, b'\n', <size_t>(n - start))
        lf = (q - p) if q != NULL else n
        end = lf
        if end > start and p[end - 1] == b'\r':
            end -= 1
        if end - start > 3:
            texts.append(PyBytes_FromStringAndSize(p + start + 4, end - start - 4))
        else:
            texts.append(EMPTY)
        start = lf + 1
    return tuple(texts)


@cython.final
@cython.no_gc  # holds only bytes and a tuple of bytes: it can never be part of a cycle
@cython.freelist(4096)
cdef class Reply:
    """One complete SMTP reply: a code and its lines of text.

    ``Reply(250, (b"mx.example.org", b"PIPELINING"))`` builds one by hand;
    the parser builds them from the wire.  Replies are immutable, hashable,
    comparable and picklable; the text is kept exactly as it was received.
    Calling ``__init__`` again on a reply raises :class:`TypeError`.

    The one difference between the implementations: this class is final
    (it cannot be subclassed); the pure-Python ``Reply`` can be.
    """

    cdef readonly int code
    cdef tuple _lines
    cdef bytes _raw

    def __init__(self, code, lines):
        if self._lines is not None or self._raw is not None:
            raise TypeError(REPLY_IMMUTABLE)
        self.code, self._lines = check_reply_args(code, lines)
        self._raw = None

    @classmethod
    def _from_wire(cls, int code, lines, bytes raw):
        cdef Reply reply = Reply.__new__(Reply)
        reply.code = code
        reply._lines = tuple(lines) if lines is not None else None
        reply._raw = raw
        return reply

    @property
    def lines(self):
        """The text of each line, without code, separator and line end."""
        cdef tuple lines
        with cython.critical_section(self):
            lines = self._lines
            if lines is None:
                if self._raw is None:
                    raise TypeError("Reply was created without __init__")
                lines = _split_raw(self._raw)
                self._lines = lines
        return lines

    @property
    def raw(self):
        """The reply exactly as received (``to_bytes()`` for hand-made replies)."""
        if self._raw is None:
            return self.to_bytes()
        return self._raw

    @property
    def text(self):
        """The lines joined by ``b"\\n"``: the message ``smtplib`` returns."""
        return b"\n".join(self.lines)

    @property
    def message(self):
        """:attr:`text` decoded as UTF-8; undecodable bytes are kept as
        surrogate escapes, so ``message.encode("utf-8", "surrogateescape")``
        gives the bytes back."""
        return b"\n".join(self.lines).decode("utf-8", "surrogateescape")

    @property
    def is_multiline(self):
        """True when the reply has more than one line."""
        cdef const char* p
        cdef Py_ssize_t n
        if self._lines is None and self._raw is not None:
            # Parsed: more than one line iff a LF comes before the last byte.
            p = PyBytes_AS_STRING(self._raw)
            n = PyBytes_GET_SIZE(self._raw)
            return memchr(p, b'\n', <size_t>(n - 1)) != NULL
        return len(self.lines) > 1

    @property
    def is_preliminary(self):
        """1yz: positive preliminary (not used by SMTP proper)."""
        return 100 <= self.code < 200

    @property
    def is_positive(self):
        """2yz: positive completion, the command succeeded."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self):
        """3yz: positive intermediate, send more (``354`` after DATA)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self):
        """4yz: transient negative, try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self):
        """5yz: permanent negative, do not repeat as is."""
        return 500 <= self.code < 600

    @property
    def enhanced(self):
        """The RFC 3463 enhanced status code at the start of the text, if any."""
        global _enhanced_parse
        if _enhanced_parse is None:
            from fastreply.enhanced import parse_enhanced
            _enhanced_parse = parse_enhanced
        return _enhanced_parse(self.code, self.lines[0])

    def classify(self, command=None, *, provider=None):
        """What this reply means for the sender:
        :func:`fastreply.classify` ``(self, command, provider=provider)``."""
        global _classify
        if _classify is None:
            from fastreply.classification import classify
            _classify = classify
        return _classify(self, command, provider=provider)

    def to_bytes(self):
        """The reply in canonical wire form: CRLF line ends, ``-`` on every
        line but the last, no separator after a bare code."""
        return canonical(self.code, self.lines)

    def _smtplib_pair(self):
        """``(code, message)`` as ``smtplib.SMTP.getreply()`` returns this
        reply: the text of each line stripped of spaces, tabs, CR and LF,
        joined by LF (one pass over the raw reply, one bytes object)."""
        if self._raw is None or self._lines is not None:
            return (self.code, b"\n".join([line.strip(STRIP) for line in self.lines]))
        return (self.code, _stripped_text(self._raw))

    def __eq__(self, other):
        if type(other) is not Reply and not isinstance(other, _common.REPLY_TYPES):
            return NotImplemented
        return self.code == other.code and self.lines == other.lines

    def __ne__(self, other):
        if type(other) is not Reply and not isinstance(other, _common.REPLY_TYPES):
            return NotImplemented
        return not (self.code == other.code and self.lines == other.lines)

    def __hash__(self):
        return hash((self.code, self.lines))

    def __repr__(self):
        return f"Reply({self.code}, {self.lines!r})"

    def __reduce__(self):
        return (_common.restore_reply, (self.code, self.lines, self._raw))


_common.register_reply_type(Reply)


cdef inline object _code_int(ReplyParser self, int code):
    """feed_codes() on free-threaded builds: the int ``code`` of this parser
    (made the first time it is needed, by the thread that needs it)."""
    cdef PyObject** own = self._own_codes
    cdef object value
    if code < OWN_CODES_FROM or code >= OWN_CODES_END:
        return <object>CODE_ITEMS[code]  # immortal (600 and up: never parsed)
    if own == NULL:
        own = <PyObject**>PyMem_Calloc(OWN_CODES_END - OWN_CODES_FROM, sizeof(PyObject*))
        if own == NULL:
            raise MemoryError()
        self._own_codes = own
    if own[code - OWN_CODES_FROM] == NULL:
        value = code
        Py_INCREF(value)
        own[code - OWN_CODES_FROM] = <PyObject*>value
    return <object>own[code - OWN_CODES_FROM]


cdef bytes STRIP = b" \t\r\n"


cdef inline bint _is_strip(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\r' or c == b'\n'


cdef bytes _stripped_text(bytes raw):
    """smtplib's message of a validated wire reply: ``line[4:]`` of each line
    stripped of SP, HT, CR and LF, joined by LF."""
    cdef const char* p = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t start, lf, a, b, total = 0, lines = 0, line, pass_
    cdef const char* q
    cdef bytes out = None
    cdef char* w = NULL
    for pass_ in range(2):
        start = 0
        line = 0
        while start < n:
            q = <const char*>memchr(p + start, b'\n', <size_t>(n - start))
            lf = (q - p) if q != NULL else n - 1
            a = start + 4
            b = lf + 1
            while a < b and _is_strip(p[a]):
                a += 1
            while b > a and _is_strip(p[b - 1]):
                b -= 1
            if pass_ == 0:
                total += b - a
                lines += 1
            else:
                if line:
                    w[0] = b'\n'
                    w += 1
                memcpy(w, p + a, <size_t>(b - a))
                w += b - a
            start = lf + 1
            line += 1
        if pass_ == 0:
            out = PyBytes_FromStringAndSize(NULL, total + lines - 1)
            w = PyBytes_AS_STRING(out)
    return out


@cython.final
cdef class ReplyParser:
    """Sans-IO streaming parser of SMTP replies.

    Feed it bytes as they arrive, in chunks of any size; each call to
    :meth:`feed` returns the replies those bytes completed, in order.
    At end of stream call :meth:`close`, which raises
    :class:`~fastreply.errors.IncompleteReply` if a reply was cut short.

    Args:
        max_line_length: longest accepted line, counted with its line end
            (at least 4; a value above ``sys.maxsize`` is taken as
            ``sys.maxsize``, which no buffer can reach).
        max_reply_lines: most lines accepted in one reply (at least 1; the
            same cap).
        strict: follow RFC 5321 exactly (CRLF only, reply codes 200-559 per
            the ABNF, the same code on every line of a reply).

    Threads: each method runs whole, in a critical section on the parser
    (the pure-Python parser holds a lock instead), so a parser shared by
    threads never breaks; which thread's bytes come first is still the
    callers' business.  A parser is one stream's state: it cannot be
    pickled or copied (:class:`TypeError`), make a new one with the same
    options.  This class is final; the pure-Python ``ReplyParser`` can be
    subclassed.
    """

    cdef LineState _state        # the limits, and the lines of the reply being read
    # The incomplete reply, from its first byte: _buf[0:_len].
    cdef char* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _offset      # stream offset of _buf[0] (or of the chunk being parsed)
    cdef Py_ssize_t _line_start  # start of the line being read, in _buf
    cdef object _error           # the ReplyError that stopped the parser, or None
    # While feed_checked() runs (_checking): the table's mask words and how
    # many commands it has, the log from the command the call's first reply
    # answers and its length, and where the positions of unexpected replies go.
    cdef bint _checking
    cdef const uint64_t* _check_masks
    cdef Py_ssize_t _check_commands
    cdef const unsigned char* _check_log
    cdef Py_ssize_t _check_logged
    cdef list _check_unexpected
    # Free-threaded builds: this parser's ints for feed_codes(), made as
    # needed (see SHARED_CODES); NULL until one is.
    cdef PyObject** _own_codes

    def __cinit__(self):
        self._buf = NULL
        self._len = 0
        self._cap = 0
        self._checking = False
        self._own_codes = NULL

    def __init__(self, *, max_line_length=DEFAULT_MAX_LINE_LENGTH,
                 max_reply_lines=DEFAULT_MAX_REPLY_LINES, strict=False):
        cdef Py_ssize_t max_line = check_limit("max_line_length", max_line_length, 4)
        cdef Py_ssize_t max_lines = check_limit("max_reply_lines", max_reply_lines, 1)
        cdef bint is_strict = bool(strict)
        with cython.critical_section(self):
            self._state.max_line = max_line
            self._state.max_lines = max_lines
            self._state.strict = is_strict
            self._reset()

    def __reduce__(self):
        raise TypeError(NO_COPY)

    def __copy__(self):
        raise TypeError(NO_COPY)

    def __deepcopy__(self, memo):
        raise TypeError(NO_COPY)

    def __dealloc__(self):
        cdef Py_ssize_t i
        PyMem_Free(self._buf)
        self._buf = NULL
        if self._own_codes != NULL:
            for i in range(OWN_CODES_END - OWN_CODES_FROM):
                Py_XDECREF(self._own_codes[i])
            PyMem_Free(self._own_codes)
            self._own_codes = NULL

    @property
    def max_line_length(self):
        return self._state.max_line

    @property
    def max_reply_lines(self):
        return self._state.max_lines

    @property
    def strict(self):
        return self._state.strict

    @property
    def buffered(self):
        """How many bytes are held, waiting for the rest of a reply."""
        with cython.critical_section(self):
            return self._len

    @property
    def offset(self):
        """Stream offset of the next byte to be fed (bytes fed since reset)."""
        with cython.critical_section(self):
            return self._offset + self._len

    @cython.critical_section
    def reset(self):
        """Forget everything: buffered bytes, offsets and any error."""
        self._reset()

    cdef void _reset(self) noexcept:
        self._len = 0
        self._offset = 0
        self._line_start = 0
        self._state.nlines = 0
        self._state.first_code = -1
        self._state.last_code = -1
        self._error = None
        if self._cap > KEEP_CAPACITY:
            PyMem_Free(self._buf)
            self._buf = NULL
            self._cap = 0

    @cython.critical_section
    def feed(self, data):
        """Parse ``data`` (the next bytes of the stream) and return the replies
        it completed, in order.  An incomplete reply stays buffered."""
        cdef list out = []
        self._feed(data, out, True)
        return out

    @cython.critical_section
    def feed_codes(self, data):
        """Like :meth:`feed`, but return only the code of each completed reply
        (for callers that need nothing else; no :class:`Reply` is built)."""
        cdef list out = []
        self._feed(data, out, False)
        return out

    def feed_checked(self, data, table, commands, start=0):
        """Like :meth:`feed`, and check each completed reply against ``table``
        on the way: return the replies and the positions (in that list) of
        those whose code their command does not allow.

        ``commands`` is the log of the commands sent, as command numbers (a
        ``bytearray`` of them is the fastest form; any sequence of ints
        works: a list, a ``collections.deque``, an ``array.array`` of any
        type code, a one-dimensional memoryview), and ``commands[start]``
        the command the first reply of this call answers (the count of
        replies received before it, usually).  A reply past the end of the
        log answers no command sent: it is unexpected too.

        The part of the log this call can use (a reply has at least 4
        bytes) is read once, item by item, and checked before any byte is
        parsed: ``ValueError`` for a number that is no command of the table,
        or for a log whose ``len()`` promised more items than it gave, so an
        error there loses nothing.  A :class:`~fastreply.errors.ReplyError`
        carries the replies completed before it, unchecked, as :meth:`feed`'s
        does.
        """
        # Everything that may run Python code (the log's own methods, the
        # table's) is done here, outside the parser's critical section.
        cdef Py_ssize_t size, most, buffered
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise data_type_error(data)
        size = data.nbytes if type(data) is memoryview else len(data)
        if (isinstance(table, CodeMasks) and (<CodeMasks>table)._ncommands <= 256
                and (type(commands) is bytes or type(commands) is bytearray)
                and type(start) is int and start >= 0):
            # The common case: the log's own buffer, read in C.
            return self._feed_logged(data, <CodeMasks>table, commands, start, size, commands, start)
        with cython.critical_section(self):
            buffered = self._len
        # A reply has at least 4 bytes ("250\n"): this feed completes at most
        # this many, and needs no more of the log.
        most = (buffered + size) // 4
        if isinstance(table, CodeMasks) and (<CodeMasks>table)._ncommands <= 256:
            check_log_args(table, commands, start)
            window = _log_bytes(commands, start, most, (<CodeMasks>table)._ncommands)
            return self._feed_logged(data, <CodeMasks>table, window, 0, size, commands, start)
        # A table of the pure-Python engine (or one with more commands than
        # a byte numbers): check the replies afterwards.
        _, window = log_window(table, commands, start, most)
        out = self.feed(data)
        allows = table.allows
        logged = len(window)
        return out, [
            i for i, reply in enumerate(out)
            if i >= logged or not allows(window[i], (<Reply>reply).code)
        ]

    cdef tuple _feed_logged(self, data, CodeMasks table, object log, object first_index,
                            Py_ssize_t size, object commands, object start):
        """feed_checked() with a log of one byte a command number (a bytes or
        bytearray object), from ``log[first_index]`` on."""
        cdef list out = []
        cdef list bad = []
        cdef Py_buffer view
        cdef Py_ssize_t first, stop, most, known = table._ncommands
        cdef bint refused = False
        PyObject_GetBuffer(log, &view, PyBUF_SIMPLE)
        try:
            # Only the buffer held now counts (a bytearray cannot be resized
            # while it is held).
            first = view.len if first_index >= view.len else first_index
            with cython.critical_section(self):
                most = (self._len + size) // 4
                stop = first + (most if most < view.len - first else view.len - first)
                if stop > first and max_byte(<const unsigned char*>view.buf + first,
                                             stop - first) >= known:
                    refused = True
                else:
                    self._checking = True
                    self._check_masks = table._words
                    self._check_commands = known
                    self._check_log = <const unsigned char*>view.buf + first
                    self._check_logged = stop - first
                    self._check_unexpected = bad
                    try:
                        self._feed(data, out, True)
                    finally:
                        self._checking = False
                        self._check_masks = NULL
                        self._check_log = NULL
                        self._check_unexpected = None
        finally:
            PyBuffer_Release(&view)
        if refused:
            # Named as the reference names it, outside the critical section.
            log_window(table, commands, start, most)
            raise ValueError("commands changed while they were checked")
        return out, bad

    @cython.critical_section
    def close(self):
        """Declare the end of the stream; raise
        :class:`~fastreply.errors.IncompleteReply` if a reply was cut short."""
        cdef const char* q
        cdef Py_ssize_t end
        if self._error is not None:
            raise self._stopped()
        if self._len:
            q = <const char*>memchr(self._buf, b'\n', <size_t>self._len)
            end = (q - self._buf + 1) if q != NULL else self._len
            try:
                self._fail(wire_error(INCOMPLETE, self._offset,
                                      PyBytes_FromStringAndSize(self._buf, end),
                                      buffered=self._len))
            finally:
                self._stop(self._offset + self._len)

    # -- internals --------------------------------------------------------

    cdef object _stopped(self):
        error = self._error
        return stopped_error(type(error), error.reason, error.offset, error.line)

    cdef int _fail(self, error) except -1:
        """Stop the parser with ``error``, and raise it."""
        self._error = error
        raise error

    cdef int _grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = self._cap if self._cap else 256
        cdef char* buf
        while cap < need:
            cap *= 2
        buf = <char*>PyMem_Realloc(self._buf, <size_t>cap)
        if buf == NULL:
            raise MemoryError()
        self._buf = buf
        self._cap = cap
        return 0

    cdef inline int _append(self, const char* p, Py_ssize_t n) except -1:
        if self._len + n > self._cap:
            self._grow(self._len + n)
        memcpy(self._buf + self._len, p, <size_t>n)
        self._len += n
        return 0

    cdef int _feed(self, object data, list out, bint objects) except -1:
        cdef Py_buffer view
        if self._error is not None:
            raise self._stopped()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise data_type_error(data)
        if type(data) is memoryview and not (<memoryview>data).contiguous:
            data = bytes(data)  # a strided view: flatten it once
        cdef Py_ssize_t fed_until = self._offset + self._len
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        fed_until += view.len
        try:
            if self._len:
                self._feed_buffered(<const char*>view.buf, view.len, out, objects)
            else:
                self._feed_direct(<const char*>view.buf, view.len, out, objects)
        finally:
            PyBuffer_Release(&view)
            if self._error is not None:
                self._stop(fed_until)
        return 0

    cdef void _stop(self, Py_ssize_t fed_until) noexcept:
        """After an error: hold nothing; ``offset`` counts every byte fed."""
        self._offset = fed_until
        self._len = 0
        self._line_start = 0

    cdef int _line_error(self, int err, const char* p, Py_ssize_t start, Py_ssize_t lf,
                         Py_ssize_t offset, list out) except -1:
        """Raise the error ``check_line`` found in p[start:lf+1], which is at
        ``offset`` in the stream."""
        cdef bytes line = PyBytes_FromStringAndSize(p + start, lf + 1 - start)
        if err == ERR_TOO_LONG:
            line = line[:self._state.max_line]
        self._fail(wire_error(-err, offset, line, out, max_line=self._state.max_line,
                              max_lines=self._state.max_lines, first_code=self._state.first_code))
        return -1

    cdef inline int _feed_direct(self, const char* p, Py_ssize_t n, list out,
                                 bint objects) except -1:
        """Parse p[0:n] in place; the parser buffer is empty and ``_offset`` is
        the stream offset of p[0].  Copy only an incomplete reply at the end."""
        if self._state.strict:
            return _scan(self, p, n, out, objects, <Strict*>NULL)
        return _scan(self, p, n, out, objects, <Lenient*>NULL)

    cdef int _feed_buffered(self, const char* p, Py_ssize_t n, list out, bint objects) except -1:
        """Continue the reply held in the parser buffer with p[0:n], a line at
        a time (each is appended to the buffer, then checked there); once the
        reply is complete, go on in place with what follows it."""
        cdef Py_ssize_t pos = 0      # where the rest of the line starts, in p
        cdef Py_ssize_t held         # bytes of the line already in the buffer
        cdef Py_ssize_t window       # bytes of p where its LF may be, within max_line
        cdef Py_ssize_t lf, size
        cdef const char* q
        cdef int last
        cdef bytes preview
        while True:
            held = self._len - self._line_start
            window = self._state.max_line - held
            if window > n - pos:
                window = n - pos
            q = find_lf(p + pos, window)
            if q == NULL:
                if held + window >= self._state.max_line:
                    preview = (PyBytes_FromStringAndSize(self._buf + self._line_start, held)
                               + PyBytes_FromStringAndSize(p + pos, window if window < 81 else 81))
                    self._fail(wire_error(TOO_LONG, self._offset + self._line_start, preview, out,
                                          max_line=self._state.max_line))
                self._append(p + pos, n - pos)
                return 0
            lf = q - p
            self._append(p + pos, lf + 1 - pos)
            pos = lf + 1
            last = check_line(self._buf, self._line_start, self._len - 1, &self._state)
            if last < 0:
                self._line_error(last, self._buf, self._line_start, self._len - 1,
                                 self._offset + self._line_start, out)
            if not last:
                self._line_start = self._len
                continue
            # The reply is complete: the whole buffer.
            size = self._len
            self._emit_reply(out, objects, self._buf, size, self._state.last_code)
            self._state.nlines = 0
            self._offset += size
            self._len = 0
            self._line_start = 0
            if self._cap > KEEP_CAPACITY:
                PyMem_Free(self._buf)
                self._buf = NULL
                self._cap = 0
            return self._feed_direct(p + pos, n - pos, out, objects)

    cdef inline int _emit_reply(self, list out, bint objects, const char* p, Py_ssize_t size,
                                int code) except -1:
        """Append the complete reply p[0:size], whose code is ``code``, to
        ``out``: for feed_codes() the code alone (a shared int of CODES, or
        this parser's own: see SHARED_CODES), else a Reply, checked against
        the command log while feed_checked() runs."""
        cdef Reply reply
        cdef Py_ssize_t index
        if not objects:
            if SHARED_CODES:
                out.append(<object>PyTuple_GET_ITEM(CODES, code))
            else:
                out.append(_code_int(self, code))
            return 0
        reply = Reply.__new__(Reply)
        reply.code = code
        reply._raw = PyBytes_FromStringAndSize(p, size)
        out.append(reply)
        if self._checking:
            index = PyList_GET_SIZE(out) - 1
            if not _log_allows(self._check_masks, self._check_commands, self._check_log,
                               self._check_logged, index, code):
                self._check_unexpected.append(index)
        return 0


cdef bytes _log_bytes(object commands, object start, Py_ssize_t most, Py_ssize_t known):
    """_log_window() of the reference for a table of at most 256 commands,
    as one byte a command number: ``commands[start:start + most]``, read
    item by item and checked (the arguments were).  Its length is what the
    log gave, never what its len() promised."""
    cdef Py_ssize_t size = len(commands)
    cdef Py_ssize_t first, stop, i
    cdef long value
    cdef int overflow
    cdef bytes window
    cdef char* out
    if start >= size:
        return EMPTY
    first = start
    stop = first + (most if most < size - first else size - first)
    window = PyBytes_FromStringAndSize(NULL, stop - first)
    out = PyBytes_AS_STRING(window)  # a new object nobody else sees yet
    for i in range(first, stop):
        try:
            item = PySequence_GetItem(commands, i)
        except IndexError:
            raise log_ended(i, size) from None
        if not isinstance(item, int) or isinstance(item, bool):
            raise not_a_command(i, item, known)
        value = PyLong_AsLongAndOverflow(item, &overflow)
        if overflow or value < 0 or value >= known:
            raise not_a_command(i, item, known)
        out[i - first] = <char>value
    return window


# -- the scan of a chunk: find the lines, check each, emit each reply -------------


cdef inline int _take_line(ReplyParser self, const char* p, Py_ssize_t start, Py_ssize_t lf,
                           LineState* state, Py_ssize_t last_more, bint strict, list out) except -1:
    """Check the line p[start:lf+1] (at most ``max_line`` bytes: the caller
    made sure) and count it; return 1 when it ends its reply, 0 when more
    lines follow, or raise the error it has.  ``last_more`` is
    ``max_reply_lines - 1``: a line after that many must be the last.

    Most lines have the common form that quick_line() recognises in a few
    instructions; everything else goes through check_line(), which applies
    every rule in the reference's order and names the error."""
    cdef int last = quick_line(p, start, lf, strict)
    cdef int code
    if last == 0 and 0 < state.nlines < last_more and not strict:
        # A line in the middle of a reply (most lines of a long one): its
        # code is not needed, nothing of it is kept.
        state.nlines += 1
        return 0
    if last >= 0 and (last or state.nlines < last_more):
        # Of the common form and within max_reply_lines.  Its code matters on
        # the first line, the last one, and every line in strict mode (which
        # must repeat the first line's).
        if state.nlines == 0:
            state.first_code = state.last_code = code_at(p + start)
        elif last or strict:
            code = code_at(p + start)
            if strict and code != state.first_code:
                last = -1  # check_line() names the error
            state.last_code = code
    else:
        last = -1
    if last >= 0:
        state.nlines += 1
        return last
    last = check_line(p, start, lf, state)
    if last < 0:
        self._state = state[0]
        self._line_error(last, p, start, lf, self._offset + start, out)
    return last


# The two sets of wire rules, as types: _scan() below is written once and
# compiled once for each (Cython makes a copy of a function for every type of
# a fused argument), so that ``strict`` is a constant in each copy and the
# tests of strict mode vanish from the lenient loop.  (A ``bint strict``
# argument that is constant at both call sites is left to the C compiler,
# which keeps one copy with the tests in it: 1 to 3% more instructions a
# reply, measured with bench/profile_parsers.py --callgrind.)
cdef struct Lenient:
    char unused

cdef struct Strict:
    char unused

ctypedef fused Rules:
    Lenient
    Strict


cdef int _scan(ReplyParser self, const char* p, Py_ssize_t n, list out, bint objects,
               Rules* rules) except -1:
    """ReplyParser._feed_direct(): parse p[0:n] in place, 64 bytes at a
    time: find the lines (a bitmap of the LFs of a block), check each
    (_take_line), emit each reply a line completes (_emit_reply).  ``rules``
    is only its type: a NULL of the rules to apply."""
    cdef LineState state = self._state  # a local copy the compiler can keep in registers
    cdef Py_ssize_t max_line = state.max_line
    cdef Py_ssize_t last_more = state.max_lines - 1
    cdef Py_ssize_t reply_start = 0  # where the reply being read starts, in p
    cdef Py_ssize_t line_start = 0   # where the line being read starts
    cdef Py_ssize_t block = 0        # the block of 64 bytes searched for line ends
    cdef Py_ssize_t block_end
    cdef uint64_t line_ends          # the LFs of the block not taken yet, a bit each
    cdef bint all_short              # every line that ends in the block is short enough
    cdef bint too_long = False
    cdef Py_ssize_t lf
    cdef bint strict = Rules is Strict  # decided when compiling
    while block < n:
        # Find the lines: a bitmap of the LFs of the block.
        if block + 64 <= n:
            line_ends = lf_mask64(p + block)
            block_end = block + 64
        else:
            line_ends = lf_mask_tail(p + block, n - block)
            block_end = n
        # A line that ends in this block is within the limit when the line
        # being read at its start is (the lines after it start later).
        all_short = block_end - line_start <= max_line
        while line_ends:
            lf = block + ctz64(line_ends)
            line_ends &= line_ends - 1
            if not all_short and lf + 1 - line_start > max_line:
                too_long = True  # no LF in the first max_line bytes of the line
                break
            # Check the line; emit the reply it ends.
            if _take_line(self, p, line_start, lf, &state, last_more, strict, out):
                self._emit_reply(out, objects, p + reply_start, lf + 1 - reply_start,
                                 state.last_code)
                state.nlines = 0
                reply_start = lf + 1
            line_start = lf + 1
        if too_long or block_end - line_start >= max_line:
            too_long = True
            break
        block = block_end
    self._state = state
    if too_long:
        # No LF in max_line bytes: this line cannot end within the limit.
        self._fail(wire_error(
            TOO_LONG, self._offset + line_start,
            PyBytes_FromStringAndSize(p + line_start, 81 if max_line > 81 else max_line),
            out, max_line=max_line))
    self._offset += reply_start
    if reply_start < n:
        self._append(p + reply_start, n - reply_start)
        self._line_start = line_start - reply_start
    return 0


# -- the command x code bitmask engine ------------------------------------

cdef enum:
    MASK_WORDS = 16  # 16 x 64 bits: a bit for every code 0 to 1023
    C_MASK_CODES = 1000  # _common.MASK_CODES

MASK_CODES = C_MASK_CODES


cdef inline bint _mask_has(const uint64_t* words, Py_ssize_t command, long code) noexcept nogil:
    """Bit ``code`` (0 to 1023) of the mask of command number ``command``."""
    return (words[command * MASK_WORDS + (code >> 6)] >> (code & 63)) & 1


cdef inline bint _log_allows(const uint64_t* words, Py_ssize_t rows, const unsigned char* log,
                             Py_ssize_t logged, Py_ssize_t i, int code) noexcept nogil:
    """feed_checked(): whether reply ``i`` of the call answers a command of
    the log (``log[0:logged]``) that the table allows ``code`` for."""
    if i >= logged:
        return False  # past the end of the log: it answers no command sent
    # (the log was checked before parsing; its number is tested again, as
    # another thread may have changed the log since)
    return log[i] < rows and _mask_has(words, log[i], code)


cdef long _code_number(object code) except -2:
    """A reply code as a mask bit: -1 for an int no mask holds (below 0 or
    above 999: allowed by no command); TypeError for anything but an int."""
    cdef long value
    cdef int overflow
    if not isinstance(code, int) or isinstance(code, bool):
        raise _common.code_type_error(code)
    value = PyLong_AsLongAndOverflow(code, &overflow)
    if overflow or value < 0 or value >= C_MASK_CODES:
        return -1
    return value


cdef inline long _code_of(object item) except -2:
    """The code of a reply given as a Reply (of either implementation) or an int."""
    if type(item) is Reply:
        return (<Reply>item).code
    if isinstance(item, int):
        return _code_number(item)
    try:
        code = item.code
    except AttributeError:
        raise _common.reply_type_error(item) from None
    return _code_number(code)


cdef class CodeMasks:
    """The bitmask engine under :class:`fastreply.tables.ReplyTable`: one
    mask per command (a command's number indexes them), bit ``code`` set
    when the command may get that code, kept as a C array of 64-bit words
    so that a check is a shift and an AND with no Python object touched.
    Built once with :meth:`_set_masks`; afterwards it never changes (which
    makes it safe to share between threads)."""

    cdef uint64_t* _words
    cdef Py_ssize_t _ncommands
    cdef tuple _masks

    def __cinit__(self):
        self._words = NULL
        self._ncommands = 0
        self._masks = ()

    def __dealloc__(self):
        PyMem_Free(self._words)

    def _set_masks(self, masks):
        cdef tuple values
        cdef Py_ssize_t i, w, n
        cdef uint64_t* words
        cdef uint64_t* old = NULL
        cdef bint taken = False
        if self._masks:
            raise TypeError(_common.MASKS_SET_ONCE)
        values = _common.check_masks(masks)
        n = len(values)
        words = <uint64_t*>PyMem_Malloc(max(1, n) * MASK_WORDS * sizeof(uint64_t))
        if words == NULL:
            raise MemoryError()
        for i in range(n):
            mask = values[i]
            for w in range(MASK_WORDS):
                words[i * MASK_WORDS + w] = <uint64_t>((mask >> (64 * w)) & 0xFFFFFFFFFFFFFFFF)
        # (no Python code in the critical section: the checks are done)
        with cython.critical_section(self):
            if not self._masks:
                old = self._words
                self._words = words
                self._ncommands = n
                self._masks = values
                taken = True
        if not taken:  # another thread set them meanwhile
            PyMem_Free(words)
            raise TypeError(_common.MASKS_SET_ONCE)
        PyMem_Free(old)

    @property
    def masks(self):
        """One int per command, bit ``code`` set for each allowed code."""
        return self._masks

    cdef inline bint _allows(self, Py_ssize_t command, long code) noexcept:
        if <unsigned long>code >= C_MASK_CODES:
            return False
        return _mask_has(self._words, command, code)

    cdef Py_ssize_t _index(self, object command) except -1:
        """A command number of this table (TypeError for anything but an
        int, ValueError for a number out of range)."""
        cdef long value
        cdef int overflow
        if not isinstance(command, int) or isinstance(command, bool):
            raise _common.command_type_error(command)
        value = PyLong_AsLongAndOverflow(command, &overflow)
        if overflow or value < 0 or value >= self._ncommands:
            raise _common.no_command(command)
        return value

    def allows(self, command, code):
        """Whether ``command`` may be answered by ``code`` (one shift, one AND).

        ``command`` must be a command number of this table (an int:
        :class:`TypeError` otherwise, :class:`ValueError` when out of range);
        ``code`` must be an int (:class:`TypeError` for a float or a bool),
        and one outside 0-999 is allowed by no command."""
        cdef Py_ssize_t index = self._index(command)
        return self._allows(index, _code_number(code))

    def check_all(self, commands, replies):
        """:meth:`allows` for each (command, reply) pair, in order; a reply
        may be a :class:`Reply` or a code.  Both must be equally long."""
        cdef list cmds = list(commands)
        cdef list reps = list(replies)
        cdef Py_ssize_t i, n = len(cmds)
        cdef Py_ssize_t command
        cdef long code
        cdef list out
        _common.check_all_lengths(n, len(reps))
        out = [None] * n
        for i in range(n):
            command = self._index(cmds[i])
            code = _code_of(reps[i])
            out[i] = True if self._allows(command, code) else False
        return out

    def unexpected(self, commands, replies, start=0):
        """The positions in ``replies`` whose code ``commands`` does not
        allow, pairing ``replies[i]`` with ``commands[start + i]`` (a running
        command log and the replies of one read).  Empty when all is well."""
        cdef list reps = list(replies)
        cdef Py_ssize_t i, n = len(reps), first, size
        cdef Py_ssize_t command
        cdef long code
        cdef list out = []
        cdef const unsigned char* numbers = NULL
        cdef Py_buffer view
        _common.check_start(start)
        if type(commands) is bytearray or type(commands) is bytes:
            # A log of command numbers, one byte each: the fastest form.
            PyObject_GetBuffer(commands, &view, PyBUF_SIMPLE)
            try:
                size = view.len  # what is held now (a bytearray cannot shrink meanwhile)
                _common.check_unexpected_lengths(n, start, size)
                first = start
                numbers = <const unsigned char*>view.buf
                for i in range(n):
                    command = numbers[first + i]
                    if command >= self._ncommands:
                        raise _common.no_command(command)
                    code = _code_of(reps[i])
                    if not self._allows(command, code):
                        out.append(i)
            finally:
                PyBuffer_Release(&view)
            return out
        size = len(commands)
        _common.check_unexpected_lengths(n, start, size)
        first = start
        for i in range(n):
            command = self._index(commands[first + i])
            code = _code_of(reps[i])
            if not self._allows(command, code):
                out.append(i)
        return out
