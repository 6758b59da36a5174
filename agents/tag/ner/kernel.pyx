# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled part of the entity tagger: tokens, feature hashing, scores, Viterbi, training.

``scan`` cuts a text into tokens and looks each up in a hash table of word ids without
making a string for a known word (~0.15 µs a token). A token's score for each label is the
sum of the weights of its features, hashed into one table ``W`` (buckets x labels). Most
features belong to one word at one offset from the token ("the word two to the left is
lower-case 'minister'"), so their sum is kept per word and offset: ``vec[word, slot]``,
made the first time it is needed and then reused by every token of every document. Only
the few features that mix the token's context (its line, its sentence position, what the
document says about the word elsewhere) are hashed per token. Lower-case stretches away
from any capitalised word are not scored at all: they are O, and the Viterbi search runs
over the *active* segments between them (about one token in six of news prose).

``cascade`` runs stage one, then stage two, whose context features add stage one's labels
(what the other tokens of the same word were tagged): the document's context is worked out
once. Training (``perceptron_epoch``) sees the same features as index lists (``features``)
and updates ``W`` and the label transitions ``T`` (averaged perceptron).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_KIND, PyUnicode_READ, Py_UNICODE_TOLOWER

import numpy as np

# Word flags (``Model.flags``), set by agents.tag.ner.lexicon.
cdef enum:
    F_HAS_UPPER = 1
    F_HAS_LOWER = 2
    F_HAS_DIGIT = 4
    F_SENT_END = 8      # ". ! ?"
    F_SOFT_END = 16     # ": ; --": a new clause
    F_OPENER = 32       # quotes and brackets between a sentence end and its next word
    F_URL = 64          # never in a name
    F_CAPS2 = 128       # two upper-case letters or more
    F_LONG = 256        # a word of four letters or more (for title-case lines)

# Kinds of word case (``Model.case``).
cdef enum:
    C_LOWER = 0
    C_INIT = 1          # "Taiwan"
    C_CAPS = 2          # "NATO"
    C_MIXED = 3         # "iPhone"

# Line kinds.
cdef enum:
    L_NORMAL = 0
    L_SHOUT = 1         # no lower-case letter: a wire headline
    L_TITLE = 2         # Title Case Headline

cdef enum:
    N_OFFSETS = 5       # offsets -2..2
    N_VEC = 11          # per word: offsets -2..2, then T_LINE_LOWER x 3 line kinds, T_SENT_LOWER x 3
    N_RUNTIME = 16      # context feature templates (12..15: stage two's, on stage one's labels)
    MAX_RUNTIME = 16
    T_SENT_LINE = 0
    T_LINE_LOWER = 3    # (line kind, lower-case form): kept per word
    T_SENT_LOWER = 4    # (sentence position, lower-case form): kept per word
    # rows of the per-token context block
    R_SENT = 0
    R_LINE = 1
    R_DOC = 2
    R_ACTIVE = 3
    R_VOTE = 4
    R_OWN = 5
    R_NUMERIC = 6       # how much of the line is numbers: 0 little, 1 some, 2 a table row
    N_ROWS = 7

cdef float NEG = -1e30
# The slots of a word's own spelling (word, lower, p1..p4, s1..s4; see lexicon.SLOTS), which
# training drops at random (perceptron_epoch's dropout).
cdef uint64_t SPELLING_SLOTS = 0b111111110011

cdef enum:
    W_BOL = 0           # word id of the pseudo-word before a line
    W_EOL = 1           # and after it

BOL = W_BOL
EOL = W_EOL
FLAG_BITS = {
    "has_upper": F_HAS_UPPER, "has_lower": F_HAS_LOWER, "has_digit": F_HAS_DIGIT,
    "sent_end": F_SENT_END, "soft_end": F_SOFT_END, "opener": F_OPENER, "url": F_URL,
    "caps2": F_CAPS2, "long": F_LONG,
}
CASES = {"lower": C_LOWER, "init": C_INIT, "caps": C_CAPS, "mixed": C_MIXED}
RUNTIME_TEMPLATES = N_RUNTIME
STAGE_ONE_TEMPLATES = 12  # the templates that need no earlier labels
VECTOR_SLOTS = N_VEC


cdef inline uint64_t mix(uint64_t x) noexcept nogil:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x ^= x >> 30
    x *= 0xbf58476d1ce4e5b9ULL
    x ^= x >> 27
    x *= 0x94d049bb133111ebULL
    x ^= x >> 31
    return x


cdef uint64_t _hash_str(str s):
    cdef uint64_t h = 0xcbf29ce484222325ULL
    cdef Py_UCS4 c
    for c in s:
        h = (h ^ <uint64_t>c) * 0x100000001b3ULL
    h = mix(h)
    return h if h else 1


def hash_str(str s):
    """A stable 64-bit hash of a string (never 0, which means "no value"): Python's ``hash``
    changes per process, and the weights are stored by hash."""
    return _hash_str(s)


# ASCII character classes, so that the common characters need no Unicode database lookup.
cdef enum:
    A_ALNUM = 1
    A_SPACE = 2
    A_DECIMAL = 4
cdef uint8_t ASCII[128]
for _k in range(128):
    ASCII[_k] = ((A_ALNUM if chr(_k).isalnum() else 0) | (A_SPACE if chr(_k).isspace() else 0)
                 | (A_DECIMAL if chr(_k).isdecimal() else 0))


cdef inline bint _alnum(Py_UCS4 c) noexcept:
    """regex [^\W_]"""
    return (ASCII[c] & A_ALNUM) != 0 if c < 128 else c.isalnum()


cdef inline bint _space(Py_UCS4 c) noexcept:
    return (ASCII[c] & A_SPACE) != 0 if c < 128 else c.isspace()


cdef inline bint _decimal(Py_UCS4 c) noexcept:
    return (ASCII[c] & A_DECIMAL) != 0 if c < 128 else c.isdecimal()


cdef inline bint _at(const void* data, int kind, Py_ssize_t p, Py_ssize_t size, const char* lit,
                     Py_ssize_t n) noexcept:
    cdef Py_ssize_t k
    if p + n > size:
        return False
    for k in range(n):
        if PyUnicode_READ(kind, data, p + k) != <Py_UCS4>lit[k]:
            return False
    return True


cdef inline bint _url_body(Py_UCS4 c) noexcept:
    return not (_space(c) or c == u'<' or c == u'>' or c == u'"' or c == u'\u201c'
                or c == u'\u201d' or c == u'(' or c == u')' or c == u'[' or c == u']')


cdef inline bint _url_tail(Py_UCS4 c) noexcept:
    return _url_body(c) and not (c == u'.' or c == u',' or c == u';' or c == u':' or c == u'!'
                                 or c == u'?' or c == u"'" or c == u'\u2019')


cdef inline bint _word_char(Py_UCS4 c) noexcept:
    return _alnum(c) or c == u'_'  # regex \w


cdef inline bint _apostrophe(Py_UCS4 c) noexcept:
    return c == u"'" or c == u'\u2019'


cdef inline bint _ascii_upper(Py_UCS4 c) noexcept:
    return u'A' <= c <= u'Z'


cdef Py_ssize_t _token_end(str text, const void* data, int kind, Py_ssize_t p, Py_ssize_t size, frozenset dotted):
    """End of the token that starts at ``p``: agents.tag.ner.tokens.TOKEN, by hand."""
    cdef Py_ssize_t q, r, k, last, groups, prev_end
    cdef Py_UCS4 c = PyUnicode_READ(kind, data, p), d
    # URL
    q = -1
    if _at(data, kind, p, size, b"https://", 8):
        q = p + 8
    elif _at(data, kind, p, size, b"http://", 7):
        q = p + 7
    elif _at(data, kind, p, size, b"www.", 4):
        q = p + 4
    if q >= 0:
        r = q
        while r < size and _url_body(PyUnicode_READ(kind, data, r)):
            r += 1
        while r - 1 > q and not _url_tail(PyUnicode_READ(kind, data, r - 1)):
            r -= 1
        if r - 1 > q:
            return r
    # e-mail address
    if _word_char(c) or c == u'.' or c == u'+' or c == u'-':
        q = p
        while q < size and (_word_char(PyUnicode_READ(kind, data, q)) or PyUnicode_READ(kind, data, q) == u'.' or PyUnicode_READ(kind, data, q) == u'+' or PyUnicode_READ(kind, data, q) == u'-'):
            q += 1
        if q < size and PyUnicode_READ(kind, data, q) == u'@':
            r = q + 1
            while r < size and (_word_char(PyUnicode_READ(kind, data, r)) or PyUnicode_READ(kind, data, r) == u'-'):
                r += 1
            if r > q + 1:
                groups = 0
                while r + 1 < size and PyUnicode_READ(kind, data, r) == u'.' and (_word_char(PyUnicode_READ(kind, data, r + 1)) or PyUnicode_READ(kind, data, r + 1) == u'-'):
                    r += 1
                    while r < size and (_word_char(PyUnicode_READ(kind, data, r)) or PyUnicode_READ(kind, data, r) == u'-'):
                        r += 1
                    groups += 1
                if groups:
                    return r
    if not _alnum(c):
        # possessive 's
        if _apostrophe(c) and p + 1 < size and (PyUnicode_READ(kind, data, p + 1) == u's' or PyUnicode_READ(kind, data, p + 1) == u'S') and (
                p + 2 >= size or not _alnum(PyUnicode_READ(kind, data, p + 2))):
            return p + 2
        if (c == u'-' or c == u'.') and p + 1 < size and PyUnicode_READ(kind, data, p + 1) == c:
            q = p + 2
            while q < size and PyUnicode_READ(kind, data, q) == c:
                q += 1
            return q
        return p + 1
    # initialism: U.S.
    if not _decimal(c):
        q = p
        groups = 0
        while q + 1 < size and _alnum(PyUnicode_READ(kind, data, q)) and not _decimal(PyUnicode_READ(kind, data, q)) and PyUnicode_READ(kind, data, q + 1) == u'.':
            q += 2
            groups += 1
        if groups >= 2 and (q >= size or not _alnum(PyUnicode_READ(kind, data, q))):
            return q
    # the alphanumeric run, for the dotted abbreviation and the initial
    q = p
    while q < size and _alnum(PyUnicode_READ(kind, data, q)):
        q += 1
    if q + 1 < size and PyUnicode_READ(kind, data, q) == u'.' and _space(PyUnicode_READ(kind, data, q + 1)) and text[p:q] in dotted:
        return q + 1
    if _ascii_upper(c) and q == p + 1 and q + 1 < size and PyUnicode_READ(kind, data, q) == u'.' and _space(PyUnicode_READ(kind, data, q + 1)):
        r = q + 1
        while r < size and _space(PyUnicode_READ(kind, data, r)):
            r += 1
        if r < size and _ascii_upper(PyUnicode_READ(kind, data, r)):
            return q + 1
    # numbers: 1,000.5 and 5-1/2
    if _decimal(c):
        q = p
        while q < size and _decimal(PyUnicode_READ(kind, data, q)):
            q += 1
        r = q
        prev_end = -1
        groups = 0
        while r + 1 < size and (PyUnicode_READ(kind, data, r) == u'.' or PyUnicode_READ(kind, data, r) == u',') and _decimal(PyUnicode_READ(kind, data, r + 1)):
            prev_end = r
            r += 1
            while r < size and _decimal(PyUnicode_READ(kind, data, r)):
                r += 1
            groups += 1
        if groups:
            if r >= size or not _alnum(PyUnicode_READ(kind, data, r)):
                return r
            if groups >= 2:
                return prev_end
        r = q
        if r + 1 < size and PyUnicode_READ(kind, data, r) == u'-' and _decimal(PyUnicode_READ(kind, data, r + 1)):
            r += 1
            while r < size and _decimal(PyUnicode_READ(kind, data, r)):
                r += 1
            if not (r + 1 < size and PyUnicode_READ(kind, data, r) == u'/' and _decimal(PyUnicode_READ(kind, data, r + 1))):
                r = q
        if r + 1 < size and PyUnicode_READ(kind, data, r) == u'/' and _decimal(PyUnicode_READ(kind, data, r + 1)):
            r += 1
            while r < size and _decimal(PyUnicode_READ(kind, data, r)):
                r += 1
            if r >= size or not _alnum(PyUnicode_READ(kind, data, r)):
                return r
    # S&P
    if _ascii_upper(c):
        q = p
        while q < size and _ascii_upper(PyUnicode_READ(kind, data, q)):
            q += 1
        if q + 1 < size and PyUnicode_READ(kind, data, q) == u'&' and _ascii_upper(PyUnicode_READ(kind, data, q + 1)):
            r = q + 1
            while r < size and _ascii_upper(PyUnicode_READ(kind, data, r)):
                r += 1
            if r >= size or not _alnum(PyUnicode_READ(kind, data, r)):
                return r
    # a word, with hyphens and apostrophes inside: O'Neill, Jean-Luc (not the 's of Taiwan's)
    q = p
    while q < size and _alnum(PyUnicode_READ(kind, data, q)):
        q += 1
    while q + 1 < size:
        d = PyUnicode_READ(kind, data, q)
        if not _alnum(PyUnicode_READ(kind, data, q + 1)):
            break
        if d == u'-':
            pass
        elif _apostrophe(d):
            if (PyUnicode_READ(kind, data, q + 1) == u's' or PyUnicode_READ(kind, data, q + 1) == u'S') and (q + 2 >= size or not _alnum(PyUnicode_READ(kind, data, q + 2))):
                break
        else:
            break
        q += 1
        while q < size and _alnum(PyUnicode_READ(kind, data, q)):
            q += 1
    return q


cdef inline uint64_t _fnv(const void* data, int kind, Py_ssize_t a, Py_ssize_t b) noexcept:
    """``hash_str`` of ``text[a:b]``, without making the string."""
    cdef uint64_t h = 0xcbf29ce484222325ULL
    cdef Py_ssize_t i
    for i in range(a, b):
        h = (h ^ <uint64_t>PyUnicode_READ(kind, data, i)) * 0x100000001b3ULL
    h = mix(h)
    return h if h else 1


def scan(str text, frozenset dotted, uint64_t[::1] keys, int32_t[::1] values, int32_t[::1] wid,
         int32_t[::1] starts, int32_t[::1] ends, uint8_t[::1] newline):
    """Cut ``text`` into tokens (those of the regex ``agents.tag.ner.tokens.TOKEN``; ``dotted``
    its abbreviations) and look each up in the word table, an open-addressing hash table of
    ``hash_str(word)`` -> id (``keys`` 0 where free, a power of two long): no string is made
    for a known word. Fills ``wid`` (-1: a new word), ``starts``, ``ends`` and ``newline``
    (a line break before the token), all at least ``len(text)`` long; returns the count."""
    cdef Py_ssize_t size = len(text), pos = 0, end, n = 0
    cdef int kind = PyUnicode_KIND(text)
    cdef const void* data = PyUnicode_DATA(text)
    cdef uint64_t mask = keys.shape[0] - 1, h, slot
    cdef Py_UCS4 c
    cdef uint8_t nl = 0
    while pos < size:
        c = PyUnicode_READ(kind, data, pos)
        if _space(c):
            if c == u'\n':
                nl = 1
            pos += 1
            continue
        end = _token_end(text, data, kind, pos, size, dotted)
        h = _fnv(data, kind, pos, end)
        slot = h & mask
        while keys[slot] != h and keys[slot] != 0:
            slot = (slot + 1) & mask
        wid[n] = values[slot] if keys[slot] == h else -1
        starts[n] = <int32_t>pos
        ends[n] = <int32_t>end
        newline[n] = nl
        nl = 0
        n += 1
        pos = end
    return n


def tokenize(str text, frozenset dotted):
    """(tokens, starts, ends, newline) of ``text`` (``scan`` with the strings)."""
    cdef Py_ssize_t size = len(text), n
    cdef uint64_t[::1] keys = np.zeros(1, dtype=np.uint64)
    cdef int32_t[::1] values = np.zeros(1, dtype=np.int32)
    wid = np.empty(size, dtype=np.int32)
    starts = np.empty(size, dtype=np.int32)
    ends = np.empty(size, dtype=np.int32)
    newline = np.empty(size, dtype=np.uint8)
    n = scan(text, dotted, keys, values, wid, starts, ends, newline)
    tokens = [text[a:b] for a, b in zip(starts[:n].tolist(), ends[:n].tolist())]
    return tokens, starts[:n].copy(), ends[:n].copy(), newline[:n].copy()


def insert(uint64_t[::1] keys, int32_t[::1] values, uint64_t h, int32_t value):
    """Put ``h`` -> ``value`` in a ``scan`` word table (which must have a free slot)."""
    cdef uint64_t mask = keys.shape[0] - 1, slot = h & mask
    while keys[slot] != h and keys[slot] != 0:
        slot = (slot + 1) & mask
    keys[slot] = h
    values[slot] = value


CASE_NAMES = ("lower", "init", "caps", "mixed", "digit", "alnum", "punct")
cdef uint64_t CASE_HASH[7]
cdef uint64_t LENGTH_HASH[9]
cdef uint64_t BAND_HASH[16]
for _k in range(16):
    BAND_HASH[_k] = _hash_str(str(_k))
for _k in range(7):
    CASE_HASH[_k] = _hash_str(CASE_NAMES[_k])
for _k in range(9):
    LENGTH_HASH[_k] = _hash_str(str(_k))


cdef inline Py_UCS4 _norm(Py_UCS4 c) noexcept:
    """Digits as 0 and curly single quotes straight: the "word" slot's form."""
    if u'0' <= c <= u'9':
        return u'0'
    if c == u'\u2019' or c == u'\u2018':
        return u"'"
    return c


cdef inline Py_UCS4 _shape_char(Py_UCS4 c) noexcept:
    if c.isupper():
        return u'X'
    if c.isalpha():
        return u'x'
    if c.isdigit():
        return u'd'
    return c


cdef inline uint64_t _fnv_step(uint64_t h, Py_UCS4 c) noexcept:
    return (h ^ <uint64_t>c) * 0x100000001b3ULL


cdef inline uint64_t _fnv_end(uint64_t h) noexcept:
    h = mix(h)
    return h if h else 1


def spell(str word, uint64_t[::1] out, frozenset sent_end, frozenset soft_end, frozenset openers):
    """The spelling slots of a word's attributes (agents.tag.ner.lexicon.attributes: word,
    lower, shapes, prefixes, suffixes, case, length) straight from its characters; returns
    (flags, case). The other slots need dictionaries and are Python's."""
    cdef int flags, case
    _spell(word, &out[0], sent_end, soft_end, openers, &flags, &case)
    return flags, case


cdef void _spell(str word, uint64_t* out, frozenset sent_end, frozenset soft_end, frozenset openers,
                 int* flags_out, int* case_out):
    cdef Py_ssize_t n = len(word), i, run_long = 0, n_long = 0, n_short = 0
    cdef int n_upper = 0, n_lower = 0, n_alpha = 0, n_digit = 0, n_alnum = 0, flags = 0, case, k
    cdef uint64_t h_word = 0xcbf29ce484222325ULL, h_lower = h_word, h_long = h_word, h_short = h_word
    cdef uint64_t h
    cdef Py_UCS4 c, m, prev_long = 0, prev_short = 0
    cdef Py_UCS4 low[4096]
    if n > 4096:
        word = word[:4096]
        n = 4096
    for i in range(n):
        c = word[i]
        if c.isupper():
            n_upper += 1
        elif c.islower():
            n_lower += 1
        if c.isalpha():
            n_alpha += 1
        if c.isdigit():
            n_digit += 1
        if c.isalnum():
            n_alnum += 1
        m = _norm(c)
        h_word = _fnv_step(h_word, m)
        low[i] = Py_UNICODE_TOLOWER(m)
        h_lower = _fnv_step(h_lower, low[i])
        m = _shape_char(c)
        run_long = run_long + 1 if n_long and m == prev_long else 1
        if run_long <= 4 and n_long < 12:
            h_long = _fnv_step(h_long, m)
            n_long += 1
        prev_long = m
        if (not n_short or m != prev_short) and n_short < 8:
            h_short = _fnv_step(h_short, m)
            n_short += 1
        prev_short = m
    out[0] = _fnv_end(h_word)
    out[1] = _fnv_end(h_lower)
    out[2] = _fnv_end(h_long)
    out[3] = _fnv_end(h_short)
    for k in range(1, 5):  # prefixes and suffixes of the lower-case form
        out[3 + k] = out[7 + k] = 0
        if n > k:
            h = 0xcbf29ce484222325ULL
            for i in range(k):
                h = _fnv_step(h, low[i])
            out[3 + k] = _fnv_end(h)
            h = 0xcbf29ce484222325ULL
            for i in range(n - k, n):
                h = _fnv_step(h, low[i])
            out[7 + k] = _fnv_end(h)
    if n_upper:
        case = (2 if not n_lower else 1 if word[0].isupper() else 3)
    elif n_lower:
        case = 5 if n_digit else 0
    else:
        case = 4 if n_digit else 6
    out[16] = CASE_HASH[case]
    out[17] = LENGTH_HASH[n if n < 8 else 8]
    if n_upper:
        flags |= F_HAS_UPPER
    if n_upper >= 2:
        flags |= F_CAPS2
    if n_lower:
        flags |= F_HAS_LOWER
    if n_digit:
        flags |= F_HAS_DIGIT
    if n_alpha >= 4:
        flags |= F_LONG
    if not n_alnum:
        if word in sent_end:
            flags |= F_SENT_END
        if word in soft_end:
            flags |= F_SOFT_END
        if word in openers:
            flags |= F_OPENER
    if word.startswith(("http://", "https://", "www.")) or (u"@" in word and u"." in word):
        flags |= F_URL
    flags_out[0] = flags
    case_out[0] = case


def hash_values(list values, uint64_t[::1] out):
    """``out[k] = hash_str(values[k])``, 0 for None (a word's attributes in one call)."""
    cdef Py_ssize_t k
    for k in range(len(values)):
        v = values[k]
        out[k] = 0 if v is None else _hash_str(<str>v)


cdef inline uint64_t rt_hash(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) noexcept nogil:
    return mix(seed ^ (a * 0x9e3779b97f4a7c15ULL) ^ (b * 0xc2b2ae3d27d4eb4fULL) ^ (c * 0x165667b19e3779f9ULL))


cdef class Model:
    """The weights, the per-word data of every word seen so far, and the decoder.

    ``bind`` hands over the word arrays (agents.tag.ner.lexicon grows them); ``decode`` tags
    one document given its word ids and where its lines start.
    """

    cdef public int n_labels, shift, n_slots, cluster_slot, lower_slot
    cdef public uint32_t runtime_mask
    cdef float[:, ::1] W          # (buckets, labels)
    cdef float[:, ::1] T          # (labels + 1, labels + 1): from, to; index n_labels = boundary
    cdef uint64_t[:, ::1] seeds   # (offsets, slots): 0 when a slot is not a feature there
    cdef uint64_t[::1] rt_seeds
    # per word
    cdef uint64_t[:, ::1] attrs   # (words, slots) value hashes, 0 = none
    cdef int32_t[::1] flags, case, zipf, lower_id
    cdef float[:, :, ::1] vec     # (words, N_VEC, labels)
    cdef uint16_t[::1] ready      # bit k: vec[w, k] is made
    # per lower-case form, for what a document says about a word elsewhere
    cdef int32_t[::1] stamp, n_lower, n_capmid, n_caps, n_votes
    # the word table of ``scan``: hash -> word id
    cdef uint64_t[::1] whash, keys
    cdef int32_t[::1] values
    cdef int32_t doc_no
    cdef public bint cache_vectors

    def __init__(self, W, T, seeds, rt_seeds, uint32_t runtime_mask, int lower_slot, int cluster_slot):
        self.W = W
        self.T = T
        self.seeds = seeds
        self.rt_seeds = rt_seeds
        self.n_labels = W.shape[1]
        self.n_slots = seeds.shape[1]
        buckets = W.shape[0]
        self.shift = 64 - (buckets.bit_length() - 1)
        if buckets != 1 << (64 - self.shift):
            raise ValueError("the number of buckets must be a power of two")
        if T.shape[0] != self.n_labels + 1 or T.shape[1] != self.n_labels + 1:
            raise ValueError("T must be (labels + 1) x (labels + 1)")
        if self.n_labels > 64 or self.n_slots > 64:
            raise ValueError("at most 64 labels and 64 word slots (viterbi's and word_features' buffers)")
        self.runtime_mask = runtime_mask
        self.lower_slot = lower_slot
        self.cluster_slot = cluster_slot
        self.doc_no = 0
        self.cache_vectors = True

    def bind(self, attrs, flags, case, zipf, lower_id, vec, ready, whash, stamp, n_lower, n_capmid, n_caps,
             n_votes, keys, values):
        """The word arrays (same first dimension), the per-lower-form arrays and the word table
        (agents.tag.ner.lexicon.Lexicon owns and grows them)."""
        self.whash = whash
        self.keys = keys
        self.values = values
        self.attrs = attrs
        self.flags = flags
        self.case = case
        self.zipf = zipf
        self.lower_id = lower_id
        self.vec = vec
        self.ready = ready
        self.stamp = stamp
        self.n_lower = n_lower
        self.n_capmid = n_capmid
        self.n_caps = n_caps
        self.n_votes = n_votes  # 8 per lower-case form

    def add_word(self, int32_t wid, str word, list dictionary, int32_t lower_id, int32_t band,
                 frozenset sent_end, frozenset soft_end, frozenset openers):
        """Store a new word under ``wid``: its spelling slots (``spell``), the hashed slots
        from dictionaries (``dictionary``: the three cluster slots, then the gazetteer slots
        after "length"), the frequency band, flags, case, lower-case form, and its place in
        the word table."""
        cdef int flags, case, k
        cdef uint64_t* row = &self.attrs[wid, 0]
        _spell(word, row, sent_end, soft_end, openers, &flags, &case)
        for k in range(3):
            row[12 + k] = dictionary[k]
        row[15] = BAND_HASH[band] if 0 < band < 16 else 0
        for k in range(3, len(dictionary)):
            row[15 + k] = dictionary[k]
        self.flags[wid] = flags
        self.case[wid] = case
        self.zipf[wid] = band
        self.lower_id[wid] = lower_id
        self.ready[wid] = 0
        self.whash[wid] = _hash_str(word)
        self._insert(self.whash[wid], wid)

    cdef void _insert(self, uint64_t h, int32_t wid) noexcept:
        cdef uint64_t mask = self.keys.shape[0] - 1, slot = h & mask
        while self.keys[slot] != h and self.keys[slot] != 0:
            slot = (slot + 1) & mask
        self.keys[slot] = h
        self.values[slot] = wid

    def rehash(self, int32_t n_words):
        """Fill the (new, empty) word table with words ``2..n_words - 1`` (0 and 1 are the
        line pseudo-words, never in a text)."""
        cdef int32_t w
        for w in range(2, n_words):
            self._insert(self.whash[w], w)

    # ------------------------------------------------------------------ features
    cdef inline uint32_t bucket(self, uint64_t h) noexcept nogil:
        return <uint32_t>(h >> self.shift)

    cdef int word_features(self, int32_t w, int d, uint32_t* out, uint64_t slots=0xFFFFFFFFFFFFFFFFULL) noexcept nogil:
        """The buckets of word ``w``'s features at offset ``d`` (0..4 for -2..2), of the
        slots in the bit mask ``slots``."""
        cdef int k, n = 0
        cdef uint64_t a, s
        for k in range(self.n_slots):
            if not (slots >> k) & 1:
                continue
            s = self.seeds[d, k]
            a = self.attrs[w, k]
            if s and a:
                out[n] = self.bucket(mix(a ^ s))
                n += 1
        return n

    cdef void word_vector(self, int32_t w, int slot) noexcept nogil:
        """``vec[w, slot]``: the summed weights of word ``w``'s features at offset ``slot``
        (0..4 for -2..2), or of the one context feature that pairs its lower-case form with
        a line kind (slots 5..7: template T_LINE_LOWER) or a sentence position (8..10:
        T_SENT_LOWER): those vary only with the word and a value of three."""
        cdef uint32_t buf[64]
        cdef int j, y, n
        cdef float* v = &self.vec[w, slot, 0]
        cdef uint64_t lh = self.attrs[w, self.lower_slot]
        for y in range(self.n_labels):
            v[y] = 0
        if slot < N_OFFSETS:
            n = self.word_features(w, slot, buf)
        elif slot < N_OFFSETS + 3 and self.runtime_mask & (1u << T_LINE_LOWER):
            buf[0] = self.bucket(rt_hash(self.rt_seeds[T_LINE_LOWER], slot - N_OFFSETS, lh, 0))
            n = 1
        elif slot >= N_OFFSETS + 3 and self.runtime_mask & (1u << T_SENT_LOWER):
            buf[0] = self.bucket(rt_hash(self.rt_seeds[T_SENT_LOWER], slot - N_OFFSETS - 3, lh, 0))
            n = 1
        else:
            n = 0
        for j in range(n):
            for y in range(self.n_labels):
                v[y] += self.W[buf[j], y]
        self.ready[w] |= <uint16_t>(1 << slot)

    cdef int runtime_features(self, int i, int32_t* wid, int lo, int hi, uint8_t* ctx, int n_tok,
                              uint32_t* out, bint all_templates) noexcept nogil:
        """The buckets of token ``i``'s context features (``lo:hi`` is its line; ``ctx`` the
        rows of ``context`` and ``votes``, ``n_tok`` long); without ``all_templates``, not
        those that ``word_vector`` keeps per word."""
        cdef uint8_t* doc = ctx + R_DOC * n_tok
        cdef uint8_t* vote = ctx + R_VOTE * n_tok
        cdef int32_t w = wid[i]
        cdef uint64_t s = ctx[R_SENT * n_tok + i], lt = ctx[R_LINE * n_tok + i], dl = doc[i]
        cdef uint64_t nd = ctx[R_NUMERIC * n_tok + i], vt = vote[i], ow = ctx[R_OWN * n_tok + i]
        cdef uint64_t ct = self.case[w], z = self.zipf[w]
        cdef uint64_t lh = self.attrs[w, self.lower_slot]
        cdef uint64_t cl = self.attrs[w, self.cluster_slot]
        cdef uint64_t vals[N_RUNTIME][3]
        vals[T_SENT_LINE][0] = s; vals[T_SENT_LINE][1] = lt; vals[T_SENT_LINE][2] = 0
        vals[1][0] = dl; vals[1][1] = lt; vals[1][2] = s
        vals[2][0] = dl; vals[2][1] = ct; vals[2][2] = lt
        vals[T_LINE_LOWER][0] = lt; vals[T_LINE_LOWER][1] = lh; vals[T_LINE_LOWER][2] = 0
        vals[T_SENT_LOWER][0] = s; vals[T_SENT_LOWER][1] = lh; vals[T_SENT_LOWER][2] = 0
        vals[5][0] = s; vals[5][1] = z; vals[5][2] = ct
        vals[6][0] = lt; vals[6][1] = z; vals[6][2] = ct
        vals[7][0] = doc[i - 1] if i > lo else 9; vals[7][1] = dl; vals[7][2] = doc[i + 1] if i + 1 < hi else 9
        vals[8][0] = lt; vals[8][1] = cl; vals[8][2] = 0
        vals[9][0] = dl; vals[9][1] = z; vals[9][2] = s
        vals[10][0] = nd; vals[10][1] = lt; vals[10][2] = 0
        vals[11][0] = nd; vals[11][1] = cl; vals[11][2] = 0
        # stage two: stage one's label of the token and what its word's other tokens got
        vals[12][0] = vt; vals[12][1] = lt; vals[12][2] = 0
        vals[13][0] = vt; vals[13][1] = ct; vals[13][2] = s
        vals[14][0] = ow; vals[14][1] = vt; vals[14][2] = 0
        vals[15][0] = vote[i - 1] if i > lo else 9; vals[15][1] = vt; vals[15][2] = vote[i + 1] if i + 1 < hi else 9
        cdef int r, n = 0
        for r in range(N_RUNTIME):
            if self.runtime_mask & (1u << r) and (all_templates or (r != T_LINE_LOWER and r != T_SENT_LOWER)):
                out[n] = self.bucket(rt_hash(self.rt_seeds[r], vals[r][0], vals[r][1], vals[r][2]))
                n += 1
        return n

    # ------------------------------------------------------------------ context
    cdef void context(self, int n, int32_t* wid, uint8_t* nl, int32_t* line_start, int32_t* line_end,
                      uint8_t* ctx) noexcept nogil:
        """Per token: its line's bounds, sentence position, line kind, what the document says
        about its word elsewhere, and whether it is scored at all (rows of ``ctx``)."""
        cdef uint8_t* sent = ctx + R_SENT * n
        cdef uint8_t* line = ctx + R_LINE * n
        cdef uint8_t* doc = ctx + R_DOC * n
        cdef uint8_t* active = ctx + R_ACTIVE * n
        cdef uint8_t* numeric = ctx + R_NUMERIC * n
        cdef int i, j, lo, hi, n_long, n_cap_long, n_lowers, n_caps2, n_digits, nd
        cdef int32_t w, f, lid, c
        cdef uint8_t lt
        # lines and their kinds
        lo = 0
        while lo < n:
            hi = lo + 1
            while hi < n and not nl[hi]:
                hi += 1
            n_long = n_cap_long = n_lowers = n_caps2 = n_digits = 0
            for i in range(lo, hi):
                f = self.flags[wid[i]]
                if f & F_HAS_DIGIT:
                    n_digits += 1
                if f & F_HAS_LOWER:
                    n_lowers += 1
                if f & F_CAPS2:
                    n_caps2 += 1
                if f & F_LONG:
                    n_long += 1
                    if f & F_HAS_UPPER:
                        n_cap_long += 1
            if n_lowers == 0 and n_caps2 > 0:
                lt = L_SHOUT
            elif n_long >= 3 and n_cap_long * 4 >= n_long * 3:
                lt = L_TITLE
            else:
                lt = L_NORMAL
            nd = 2 if n_digits >= 2 and 4 * n_digits >= hi - lo else (1 if n_digits and 10 * n_digits >= hi - lo else 0)
            for i in range(lo, hi):
                line_start[i] = lo
                line_end[i] = hi
                line[i] = lt
                numeric[i] = nd
            lo = hi
        # sentence position: 1 after a sentence end or at a line start, 2 after ": ; --"
        for i in range(n):
            j = i - 1
            while j >= 0 and not nl[j + 1] and (self.flags[wid[j]] & F_OPENER):
                j -= 1
            if j < 0 or nl[j + 1]:
                sent[i] = 1
            else:
                f = self.flags[wid[j]]
                sent[i] = 1 if f & F_SENT_END else (2 if f & F_SOFT_END else 0)
        # what the document says about each lower-case form (counts from normal lines)
        self.doc_no += 1
        for i in range(n):
            w = wid[i]
            lid = self.lower_id[w]
            if self.stamp[lid] != self.doc_no:
                self.stamp[lid] = self.doc_no
                self.n_lower[lid] = self.n_capmid[lid] = self.n_caps[lid] = 0
            c = self.case[w]
            if c == C_LOWER and (self.flags[w] & F_HAS_LOWER):
                self.n_lower[lid] += 1
            elif line[i] == L_NORMAL:
                if (c == C_INIT or c == C_MIXED) and sent[i] == 0:
                    self.n_capmid[lid] += 1
                elif c == C_CAPS and (self.flags[w] & F_CAPS2):
                    self.n_caps[lid] += 1
        for i in range(n):
            w = wid[i]
            lid = self.lower_id[w]
            c = self.case[w]
            doc[i] = 0
            if self.n_lower[lid] - (1 if c == C_LOWER and (self.flags[w] & F_HAS_LOWER) else 0) > 0:
                doc[i] |= 1
            if self.n_capmid[lid] - (1 if line[i] == L_NORMAL and (c == C_INIT or c == C_MIXED)
                                     and sent[i] == 0 else 0) > 0:
                doc[i] |= 2
            if self.n_caps[lid] - (1 if line[i] == L_NORMAL and c == C_CAPS
                                   and (self.flags[w] & F_CAPS2) else 0) > 0:
                doc[i] |= 4
        # active tokens: capitalised, or a lower-case word / number between two of them
        cdef int last_cap = -100
        for i in range(n):
            f = self.flags[wid[i]]
            active[i] = 1 if (f & F_HAS_UPPER) and not (f & F_URL) else 0
        for i in range(n):
            if nl[i]:
                last_cap = -100
            if active[i]:
                last_cap = i
            elif i - last_cap <= 2 and not (self.flags[wid[i]] & F_URL):
                for j in range(i + 1, min(i + 3, line_end[i])):
                    if active[j] == 1:
                        active[i] = 2
                        break
        for i in range(n):
            if active[i] == 2:
                active[i] = 1

    cdef void votes(self, int n, int32_t* wid, int32_t* labels, uint8_t* ctx) noexcept nogil:
        """Stage two's context from stage one's labels (after ``context``, whose per-form
        counters it shares): per active token, its own label (``R_OWN``) and what the other
        active tokens of its lower-case form were mostly labelled (``R_VOTE``: 0 none, 1 O,
        2 + the name type)."""
        cdef uint8_t* active = ctx + R_ACTIVE * n
        cdef uint8_t* vote = ctx + R_VOTE * n
        cdef uint8_t* own = ctx + R_OWN * n
        cdef int i, k, best, mine, count, best_count
        cdef int32_t lid
        for i in range(n):
            lid = self.lower_id[wid[i]]
            for k in range(8):
                self.n_votes[8 * lid + k] = 0
        for i in range(n):
            if active[i]:
                self.n_votes[8 * self.lower_id[wid[i]] + (0 if labels[i] == 0 else 1 + ((labels[i] - 1) >> 1))] += 1
        for i in range(n):
            vote[i] = 0
            own[i] = <uint8_t>labels[i]
            if not active[i]:
                continue
            lid = self.lower_id[wid[i]]
            mine = 0 if labels[i] == 0 else 1 + ((labels[i] - 1) >> 1)
            best = -1
            best_count = 0
            for k in range(8):
                count = self.n_votes[8 * lid + k] - (1 if k == mine else 0)
                if count > best_count:
                    best, best_count = k, count
            vote[i] = <uint8_t>(best + 1)

    # ------------------------------------------------------------------ decoding
    cdef void emissions(self, int i, int32_t* wid, int lo, int hi, uint8_t* ctx, int n_tok,
                        float* e) noexcept nogil:
        cdef int d, j, y, r, n, slot
        cdef int32_t w
        cdef float* v
        cdef uint32_t buf[MAX_RUNTIME]
        cdef int L = self.n_labels
        for y in range(L):
            e[y] = 0
        for d in range(N_OFFSETS + 2):
            if d < N_OFFSETS:
                j = i + d - 2
                w = wid[j] if lo <= j < hi else (W_BOL if j < lo else W_EOL)
                slot = d
            else:  # the context features kept per word
                w = wid[i]
                slot = N_OFFSETS + (ctx[R_LINE * n_tok + i] if d == N_OFFSETS else 3 + ctx[R_SENT * n_tok + i])
            if not (self.ready[w] >> slot) & 1 or not self.cache_vectors:
                self.word_vector(w, slot)
            v = &self.vec[w, slot, 0]
            for y in range(L):
                e[y] += v[y]
        n = self.runtime_features(i, wid, lo, hi, ctx, n_tok, buf, False)
        for r in range(n):
            for y in range(L):
                e[y] += self.W[buf[r], y]

    cdef void _decode(self, int n, int32_t* wid, uint8_t* nl, int32_t* bounds, uint8_t* ctx, float* e,
                      int32_t* back, int32_t* labels) noexcept nogil:
        """Labels of every active segment (``context`` done; the rest stay 0, O)."""
        cdef int i = 0, j, k, L = self.n_labels
        while i < n:
            if not ctx[R_ACTIVE * n + i]:
                labels[i] = 0
                i += 1
                continue
            j = i
            while j < n and ctx[R_ACTIVE * n + j] and (j == i or not nl[j]):
                j += 1
            for k in range(i, j):
                self.emissions(k, wid, bounds[i], bounds[n + i], ctx, n, e + (k - i) * L)
            viterbi(e, j - i, L, self.T, back, labels + i)
            i = j

    def decode(self, int32_t[::1] wid, uint8_t[::1] nl, int32_t[::1] stage_one=None):
        """Labels of one document's tokens (0 = O), given the word ids and ``nl[i]``: a line
        starts at token ``i``; a stage-two model also takes stage one's labels."""
        return cascade([self], wid, nl, stage_one)

    # ------------------------------------------------------------------ training view
    def features(self, int32_t[::1] wid, uint8_t[::1] nl, int32_t[::1] stage_one=None):
        """The active segments of one document and each active token's feature buckets, as
        training needs them: (segment starts and ends in token indices, token index of each
        active token, CSR pointer, buckets, how many of each token's buckets come first as
        its spelling)."""
        cdef int n = wid.shape[0]
        if n == 0:
            return ((np.zeros(0, dtype=np.int32),) * 3 + (np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint32))
                    + (np.zeros(0, dtype=np.int32),))
        cdef int32_t* bounds = <int32_t*>malloc(2 * n * sizeof(int32_t))
        cdef uint8_t* ctx = <uint8_t*>calloc(N_ROWS * n, 1)
        cdef uint32_t buf[64]
        cdef int i, j, k, d, m, q, lo, hi, w, nf
        seg_lo, seg_hi, toks, ptr, feats, spelling = [], [], [], [0], [], []
        try:
            self.context(n, &wid[0], &nl[0], bounds, bounds + n, ctx)
            if stage_one is not None:
                self.votes(n, &wid[0], &stage_one[0], ctx)
            i = 0
            while i < n:
                if not ctx[R_ACTIVE * n + i]:
                    i += 1
                    continue
                j = i
                while j < n and ctx[R_ACTIVE * n + j] and (j == i or not nl[j]):
                    j += 1
                lo, hi = bounds[i], bounds[n + i]
                seg_lo.append(i)
                seg_hi.append(j)
                for k in range(i, j):
                    toks.append(k)
                    nf = self.word_features(wid[k], 2, buf, SPELLING_SLOTS)  # first: see perceptron_epoch
                    spelling.append(nf)
                    for q in range(nf):
                        feats.append(buf[q])
                    for d in range(N_OFFSETS):
                        m = k + d - 2
                        w = wid[m] if lo <= m < hi else (W_BOL if m < lo else W_EOL)
                        nf = self.word_features(w, d, buf, ~SPELLING_SLOTS if d == 2 else 0xFFFFFFFFFFFFFFFFULL)
                        for q in range(nf):
                            feats.append(buf[q])
                    nf = self.runtime_features(k, &wid[0], lo, hi, ctx, n, buf, True)
                    for q in range(nf):
                        feats.append(buf[q])
                    ptr.append(len(feats))
                i = j
        finally:
            free(bounds)
            free(ctx)
        return (np.array(seg_lo, dtype=np.int32), np.array(seg_hi, dtype=np.int32),
                np.array(toks, dtype=np.int32), np.array(ptr, dtype=np.int64),
                np.array(feats, dtype=np.uint32), np.array(spelling, dtype=np.int32))


def cascade(list models, int32_t[::1] wid, uint8_t[::1] nl, int32_t[::1] stage_one=None):
    """Labels of one document from a cascade of models (stage two after stage one, on its
    labels; ``stage_one``: labels given for the first model to build on). The models share
    their word arrays, so the document's context is worked out once."""
    cdef int n = wid.shape[0], k, L = 0
    cdef Model model
    for k in range(len(models)):
        model = models[k]
        L = max(L, model.n_labels)
    labels_a = np.zeros(n, dtype=np.int32)
    if n == 0:
        return labels_a
    cdef int32_t[::1] labels = labels_a
    cdef int32_t* bounds = <int32_t*>malloc(2 * n * sizeof(int32_t))
    cdef uint8_t* ctx = <uint8_t*>calloc(N_ROWS * n, 1)
    cdef float* e = <float*>malloc(n * L * sizeof(float))
    cdef int32_t* back = <int32_t*>malloc(n * L * sizeof(int32_t))
    try:
        model = models[0]
        model.context(n, &wid[0], &nl[0], bounds, bounds + n, ctx)
        if stage_one is not None:
            labels[:] = stage_one
        for k in range(len(models)):
            model = models[k]
            if k or stage_one is not None:
                model.votes(n, &wid[0], &labels[0], ctx)
            model._decode(n, &wid[0], &nl[0], bounds, ctx, e, back, &labels[0])
    finally:
        free(bounds)
        free(ctx)
        free(e)
        free(back)
    return labels_a


def spans(int32_t[::1] labels):
    """(first token, end token, type index) of the names in a label array (1 + 2t begins
    type t, 2 + 2t continues it)."""
    cdef Py_ssize_t i, n = labels.shape[0], start = -1
    cdef int32_t label, kind = -1, t
    out = []
    for i in range(n):
        label = labels[i]
        if label == 0:
            if start >= 0:
                out.append((start, i, kind))
                start = -1
            continue
        t = (label - 1) >> 1
        if label & 1 or t != kind or start < 0:
            if start >= 0:
                out.append((start, i, kind))
            start, kind = i, t
    if start >= 0:
        out.append((start, n, kind))
    return out


cdef void viterbi(float* e, int n, int L, float[:, ::1] T, int32_t* back, int32_t* out) noexcept nogil:
    """Best label path of ``n`` tokens with emissions ``e`` (n x L); the segment starts and
    ends at the boundary state ``L``."""
    cdef float score[64]
    cdef float nxt[64]
    cdef int i, y, p, best_p
    cdef float best, s
    for y in range(L):
        score[y] = T[L, y] + e[y]
    for i in range(1, n):
        for y in range(L):
            best = NEG
            best_p = 0
            for p in range(L):
                s = score[p] + T[p, y]
                if s > best:
                    best = s
                    best_p = p
            nxt[y] = best + e[i * L + y]
            back[i * L + y] = best_p
        for y in range(L):
            score[y] = nxt[y]
    best = NEG
    best_p = 0
    for y in range(L):
        s = score[y] + T[y, L]
        if s > best:
            best = s
            best_p = y
    out[n - 1] = best_p
    for i in range(n - 1, 0, -1):
        best_p = back[i * L + best_p]
        out[i - 1] = best_p


def viterbi_path(float[:, ::1] e, float[:, ::1] T):
    """``viterbi`` from Python (tests): the best labels for emissions ``e`` (n x L)."""
    cdef int n = e.shape[0], L = e.shape[1]
    out_a = np.zeros(n, dtype=np.int32)
    if n == 0:
        return out_a
    cdef int32_t[::1] out = out_a
    back_a = np.zeros((n, L), dtype=np.int32)
    cdef int32_t[:, ::1] back = back_a
    viterbi(&e[0, 0], n, L, T, &back[0, 0], &out[0])
    return out_a


def perceptron_epoch(int64_t[::1] seg_ptr, int64_t[::1] tok_ptr, uint32_t[::1] feats,
                     int32_t[::1] gold, int32_t[::1] order, float[:, ::1] W, double[:, ::1] U,
                     float[:, ::1] T, double[:, ::1] UT, float[:, ::1] allowed, long c,
                     int32_t[::1] spelling, double dropout, uint64_t seed):
    """One pass of the averaged perceptron over the segments in ``order``.

    Segment ``s`` is tokens ``seg_ptr[s]:seg_ptr[s + 1]`` (in the token order of ``tok_ptr``);
    token ``t``'s buckets are ``feats[tok_ptr[t]:tok_ptr[t + 1]]``, the first ``spelling[t]``
    of them its word's spelling (form, affixes): with probability ``dropout`` a token is seen
    without those this pass, so that the weights lean on what carries over to words training
    did not see (shape, clusters, gazetteers, context). ``allowed`` is 0 for a transition
    that may happen and -inf for one that may not (I-X after O); it is added to ``T`` while
    decoding. ``U`` and ``UT`` sum each update times the step ``c`` at which it was made, so
    the averaged weights are ``W - U / c``. Returns (c, mistaken tokens).
    """
    cdef int L = W.shape[1]
    cdef int n_max = 0, s, si, t, n, i, y, yg, yp, pg, pp
    cdef long mistakes = 0
    cdef long a, b, k
    cdef uint64_t rng = seed * 0x9e3779b97f4a7c15ULL + 1
    cdef uint64_t threshold = <uint64_t>(dropout * 18446744073709551615.0) if dropout > 0 else 0
    for si in range(order.shape[0]):
        s = order[si]
        n = <int>(seg_ptr[s + 1] - seg_ptr[s])
        if n > n_max:
            n_max = n
    cdef float* e = <float*>malloc(max(n_max, 1) * L * sizeof(float))
    cdef int32_t* back = <int32_t*>malloc(max(n_max, 1) * L * sizeof(int32_t))
    cdef int32_t* pred = <int32_t*>malloc(max(n_max, 1) * sizeof(int32_t))
    cdef int64_t* first = <int64_t*>malloc(max(n_max, 1) * sizeof(int64_t))
    Tm_a = np.zeros((L + 1, L + 1), dtype=np.float32)
    cdef float[:, ::1] Tm = Tm_a
    try:
        with nogil:
            for si in range(order.shape[0]):
                s = order[si]
                a = seg_ptr[s]
                n = <int>(seg_ptr[s + 1] - a)
                for i in range(n):
                    first[i] = tok_ptr[a + i]
                    if threshold:
                        rng = mix(rng + 0x9e3779b97f4a7c15ULL)
                        if rng < threshold:
                            first[i] += spelling[a + i]
                    for y in range(L):
                        e[i * L + y] = 0
                    for k in range(first[i], tok_ptr[a + i + 1]):
                        for y in range(L):
                            e[i * L + y] += W[feats[k], y]
                for i in range(L + 1):
                    for y in range(L + 1):
                        Tm[i, y] = T[i, y] + allowed[i, y]
                viterbi(e, n, L, Tm, back, pred)
                c += 1
                for i in range(n + 1):
                    yg = gold[a + i] if i < n else L
                    yp = pred[i] if i < n else L
                    pg = gold[a + i - 1] if i > 0 else L
                    pp = pred[i - 1] if i > 0 else L
                    if i < n and yg != yp:
                        mistakes += 1
                        for k in range(first[i], tok_ptr[a + i + 1]):
                            W[feats[k], yg] += 1
                            U[feats[k], yg] += c
                            W[feats[k], yp] -= 1
                            U[feats[k], yp] -= c
                    if yg != yp or pg != pp:
                        T[pg, yg] += 1
                        UT[pg, yg] += c
                        T[pp, yp] -= 1
                        UT[pp, yp] -= c
    finally:
        free(e)
        free(back)
        free(pred)
        free(first)
    return c, mistakes


def decode_segments(int64_t[::1] seg_ptr, int64_t[::1] tok_ptr, uint32_t[::1] feats,
                    float[:, ::1] W, float[:, ::1] T):
    """Best labels of every segment (training's view), with ``T`` already masked."""
    cdef int L = W.shape[1]
    cdef int S = seg_ptr.shape[0] - 1
    cdef int s, i, y, n, n_max = 0
    cdef long a, k
    out_a = np.zeros(seg_ptr[S], dtype=np.int32)
    cdef int32_t[::1] out = out_a
    for s in range(S):
        n = <int>(seg_ptr[s + 1] - seg_ptr[s])
        if n > n_max:
            n_max = n
    cdef float* e = <float*>malloc(max(n_max, 1) * L * sizeof(float))
    cdef int32_t* back = <int32_t*>malloc(max(n_max, 1) * L * sizeof(int32_t))
    try:
        with nogil:
            for s in range(S):
                a = seg_ptr[s]
                n = <int>(seg_ptr[s + 1] - a)
                if n == 0:
                    continue
                for i in range(n):
                    for y in range(L):
                        e[i * L + y] = 0
                    for k in range(tok_ptr[a + i], tok_ptr[a + i + 1]):
                        for y in range(L):
                            e[i * L + y] += W[feats[k], y]
                viterbi(e, n, L, T, back, &out[a])
    finally:
        free(e)
        free(back)
    return out_a
