# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled per-article loop of ``agents.watch.match.WatchMatcher.match``.

Python decides what every watch means (parsing, keys, which terms a key proves, the program
of each query); this module runs the part that Python cannot make fast at 100,000 watches:

1. **Scan.** The folded tokens of the title, the body and the meta pseudo-tokens (entities,
   source, language) are walked against a token trie of every key (" taiwan strait ",
   " commun"): one hash probe per token and trie step, plus one per wildcard length, most
   of them answered by a bitmap small enough to stay in cache. It finds what an
   Aho-Corasick automaton over the joined stream finds (a key starts at a token and ends at
   one, or inside one for a wildcard), and where.
2. **Wake.** Each key found wakes the queries it is a required key of.
3. **Evaluate.** A query whose terms are all *characterised* by their keys (a term occurs
   exactly where one of its keys does, in the term's fields) runs its postfix program:
   AND / OR / NOT over its terms, NEAR over the places the scan recorded. That gives whether
   it matched and the bitmask of its terms that are evidence. Other queries go back to
   Python's tree walk (``Hits.rest``).
4. **Hits.** A matched query's member watches get their hit objects: made once per watch
   when the hit never varies, else once per (query, evidence bitmask), which Python makes
   on first sight (``Hits.pending``, then ``Kernel.remember``). ``Hits.merged`` puts them
   in rank (name) order with the hits Python made.

Each query's data (a stamp, its program, its terms' keys, its members' ranks) lies in one
run of int32s, so evaluating a candidate touches one or two cache lines. Nothing here
decides meaning: ``tests/unit/test_watch_scale.py`` holds it to ``match_exhaustive``.
"""

cimport cython
from cpython.list cimport PyList_GET_ITEM, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport Py_INCREF, PyObject
from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memmove, memset

cdef extern from "Python.h":
    ctypedef struct PyListObject:
        PyObject** ob_item
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t *size) except NULL
    int PyUnicode_KIND(object text)
    void* PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index)
    bint Py_UNICODE_ISALNUM(Py_UCS4 ch)
    int PyUnicode_1BYTE_KIND

cdef extern from *:
    void __builtin_prefetch(const void* address) nogil

# How a text is folded for the scan, per character below 256: ASCII letters lower-cased,
# digits kept, 0 for a separator, 1 for a non-ASCII letter or digit (Python folds that text:
# streams.text handles diacritics). The same tokens as streams.text.tokens for the rest.
cdef unsigned char FOLD[256]
cdef int _c
for _c in range(256):
    if 65 <= _c <= 90:
        FOLD[_c] = _c | 0x20
    elif 48 <= _c <= 57 or 97 <= _c <= 122:
        FOLD[_c] = _c
    elif _c >= 128 and chr(_c).isalnum():
        FOLD[_c] = 1
    else:
        FOLD[_c] = 0

# The opcodes of agents.watch.plan.OPCODES, as C constants for the loops below: (op, arg)
# pairs. The first five run on a truth stack; a NEAR runs the SP_* pairs that follow it on a
# span stack. agents.watch.match checks OPCODES (below) against the table when it loads this
# module, and an opcode neither loop knows is an error, never read as another.
cdef enum:
    C_TERM = 1   # arg: term index
    C_AND = 2    # arg: operand count
    C_OR = 3     # arg: operand count
    C_NOT = 4
    C_NEAR = 5   # arg: number of SP_* pairs that follow
    C_SP_TERM = 6
    C_SP_OR = 7
    C_SP_NEAR = 8  # arg: n of NEAR/n
    MAX_STACK = 256  # a query has at most 50 terms (agents.watch.query.MAX_TERMS)
    NEAR_PAIRS_SCANNED = 64  # agents.watch.query.NEAR_PAIRS_SCANNED: more pairs, bisect

OPCODES = {"TERM": C_TERM, "AND": C_AND, "OR": C_OR, "NOT": C_NOT, "NEAR": C_NEAR,
           "SP_TERM": C_SP_TERM, "SP_OR": C_SP_OR, "SP_NEAR": C_SP_NEAR}

# A query's run of int32s: a header, then per term the offset of its record, the program,
# the term records ([fields, key count, key ids...]), per member its rank and (kind 1) its
# hit's address, and (kind 2) the outcomes it remembers. Runs are laid out in the order keys wake them, so that the queries one key
# wakes lie side by side.
cdef enum:
    H_STAMP = 0    # the article that last woke it
    H_QUERY = 1
    H_KIND = 2     # 0: Python walks it; 1: one fixed hit per watch; 2: hits per evidence
    H_TERMS = 3
    H_PROGRAM = 4  # ints
    H_MEMBERS = 5
    H_RANKS = 6    # where the members' (rank, hit pointer) triples start, from the run's start
    H_SEEN = 7     # kind 2: where its remembered outcomes start (SEEN_SLOTS of SEEN_INTS)
    H_SIZE = 8
    SEEN_SLOTS = 4  # outcomes a kind-2 query remembers: it matches on the same few term sets
    SEEN_INTS = 5   # generation, evidence mask (2 ints), the address of the hits (2 ints)

cdef uint64_t FNV_OFFSET = 14695981039346656037ULL
cdef uint64_t FNV_PRIME = 1099511628211ULL


cdef inline uint64_t _mix(uint64_t node, uint64_t kind, uint64_t h) noexcept nogil:
    """One probe's hash: the trie node, exact or prefix, and the token's (prefix's) FNV-1a."""
    cdef uint64_t x = h ^ ((node << 1 | kind) * 0x9E3779B97F4A7C15ULL)
    x ^= x >> 31
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 29
    return x | 1  # 0 marks an empty slot


cdef inline uint64_t _fnv(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = FNV_OFFSET
    cdef Py_ssize_t k
    for k in range(n):
        h = (h ^ p[k]) * FNV_PRIME
    return h


ctypedef struct Edge:
    uint64_t hash
    int32_t target  # exact: the child node; prefix: the key id
    int32_t offset  # the token's bytes in the blob
    int32_t length  # with the kind in bit 30


ctypedef struct Span:
    int32_t f
    int32_t i
    int32_t j
    uint64_t leaves


ctypedef struct Ranked:
    int32_t rank
    PyObject* hit  # borrowed: the kernel's lists hold it, and the Hits holds them


cdef int _by_start(const void* x, const void* y) noexcept nogil:
    cdef const Span* a = <const Span*>x
    cdef const Span* b = <const Span*>y
    if a.f != b.f:
        return (a.f > b.f) - (a.f < b.f)
    return (a.i > b.i) - (a.i < b.i)


cdef int _by_end(const void* x, const void* y) noexcept nogil:
    cdef const Span* a = <const Span*>x
    cdef const Span* b = <const Span*>y
    if a.f != b.f:
        return (a.f > b.f) - (a.f < b.f)
    return (a.j > b.j) - (a.j < b.j)


cdef Py_ssize_t _first_at(const Span* spans, Py_ssize_t n, int32_t f, int32_t position,
                          bint by_end) noexcept nogil:
    """The first span (sorted by field, then start or end) at or after (f, position)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    cdef int32_t at
    while lo < hi:
        mid = (lo + hi) >> 1
        at = spans[mid].j if by_end else spans[mid].i
        if spans[mid].f < f or (spans[mid].f == f and at < position):
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _sort_by_rank(Ranked* items, Py_ssize_t n) except -1:
    """Sort by rank: LSD radix, 8 bits a pass (a few hundred hits: qsort's calls cost more)."""
    cdef Ranked* other
    cdef Ranked* swap
    cdef Py_ssize_t counts[256]
    cdef Py_ssize_t k, total, c
    cdef int shift
    cdef int32_t highest = 0
    if n < 2:
        return 0
    for k in range(n):
        if items[k].rank > highest:
            highest = items[k].rank
    other = <Ranked*>PyMem_Malloc(n * sizeof(Ranked))
    if other == NULL:
        raise MemoryError()
    cdef Ranked* source = items
    shift = 0
    while shift < 32 and (highest >> shift) > 0:
        memset(counts, 0, sizeof(counts))
        for k in range(n):
            counts[(source[k].rank >> shift) & 255] += 1
        total = 0
        for k in range(256):
            c = counts[k]
            counts[k] = total
            total += c
        for k in range(n):
            c = (source[k].rank >> shift) & 255
            other[counts[c]] = source[k]
            counts[c] += 1
        swap = source
        source = other
        other = swap
        shift += 8
    if source != items:
        memcpy(items, source, n * sizeof(Ranked))
        PyMem_Free(source)
    else:
        PyMem_Free(other)
    return 0


cdef class Hits:
    """One article's result. ``pending``: (query, evidence bitmask) pairs whose hits Python
    makes (then ``Kernel.remember``); ``rest``: the woken queries Python walks; ``keys``: the
    ids of the keys found; ``woken``: every woken query (when asked)."""

    cdef public list pending
    cdef public list rest
    cdef public list keys
    cdef public list woken
    cdef Ranked* ranked
    cdef Py_ssize_t n_ranked, cap
    cdef list holders  # keeps every borrowed hit alive

    def __dealloc__(self):
        PyMem_Free(self.ranked)

    cdef int _reserve(self, Py_ssize_t more) except -1:
        """Room for ``more`` hits after the ``n_ranked`` there are."""
        cdef Ranked* grown
        if self.n_ranked + more <= self.cap:
            return 0
        while self.n_ranked + more > self.cap:
            self.cap = 2 * self.cap if self.cap else 512
        grown = <Ranked*>PyMem_Realloc(self.ranked, self.cap * sizeof(Ranked))
        if grown == NULL:
            raise MemoryError()
        self.ranked = grown
        return 0

    def merged(self, list others):
        """Every hit in rank order: the kernel's and ``others`` (``(rank, hit)``, by rank)."""
        cdef Py_ssize_t n = self.n_ranked, m = len(others), a = 0, b = 0, k = 0
        cdef list out = PyList_New(n + m)
        cdef object hit
        cdef tuple pair = None
        cdef int32_t other_rank = 0
        if m:
            pair = <tuple>others[0]
            other_rank = <int32_t>pair[0]
        while a < n or b < m:
            if b >= m or (a < n and self.ranked[a].rank < other_rank):
                hit = <object>self.ranked[a].hit
                a += 1
            else:
                hit = pair[1]
                b += 1
                if b < m:
                    pair = <tuple>others[b]
                    other_rank = <int32_t>pair[0]
            Py_INCREF(hit)
            PyList_SET_ITEM(out, k, hit)
            k += 1
        return out


cdef class Kernel:
    cdef Edge* edges
    cdef uint64_t mask
    cdef uint64_t* seen  # a bitmap of every edge's hash: most probes stop here
    cdef uint64_t seen_mask
    cdef bytes blob
    cdef const unsigned char* blob_p
    cdef int32_t[::1] n_key  # per trie node: the exact key ending there, or -1
    cdef int32_t[::1] n_plen_off  # and its wildcard lengths: plens[off[n]:off[n + 1]]
    cdef int32_t[::1] plens
    cdef int32_t[::1] wake_off  # per key, the queries it wakes: their runs' offsets
    cdef int32_t[::1] wake_at
    cdef int32_t* qdata  # the queries' runs
    cdef Py_ssize_t qdata_n
    cdef int32_t[::1] q_at
    cdef list static_hits  # by rank
    cdef Py_ssize_t outcome_limit
    cdef list outcome_hits  # per remembered outcome: the hit of each member, in member order
    cdef int32_t generation
    cdef bint forget_due
    cdef bint busy
    cdef int32_t stamp
    # per-article scratch, reset after each article
    cdef uint8_t[::1] key_fields
    cdef int32_t[::1] key_head
    cdef int32_t* occ  # (i, j, f, next) per occurrence
    cdef Py_ssize_t occ_n, occ_cap
    cdef int32_t* touched
    cdef Py_ssize_t touched_n
    cdef Span* spans
    cdef Py_ssize_t spans_n, spans_cap
    cdef unsigned char* folded  # the field being scanned, folded
    cdef Py_ssize_t folded_n, folded_cap
    cdef object fold  # Python's folding (tokens joined by spaces), for the texts it must do
    cdef object hit_type
    cdef list labels  # per kind-2 query: (bit, label, ...) naming its hit terms, or None
    cdef list watches  # per kind-2 query: its members (watch_id, name, ...)
    cdef int32_t* toks  # (start, length) per token
    cdef uint64_t* tok_hash
    cdef Py_ssize_t tok_cap

    def __cinit__(self):
        self.occ_cap = 1024
        self.spans_cap = 256
        self.tok_cap = 1024
        self.occ = <int32_t*>PyMem_Malloc(self.occ_cap * 4 * sizeof(int32_t))
        self.spans = <Span*>PyMem_Malloc(self.spans_cap * sizeof(Span))
        self.toks = <int32_t*>PyMem_Malloc(self.tok_cap * 2 * sizeof(int32_t))
        self.tok_hash = <uint64_t*>PyMem_Malloc(self.tok_cap * sizeof(uint64_t))
        if self.occ == NULL or self.spans == NULL or self.toks == NULL or self.tok_hash == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.edges)
        PyMem_Free(self.seen)
        PyMem_Free(self.qdata)
        PyMem_Free(self.occ)
        PyMem_Free(self.touched)
        PyMem_Free(self.spans)
        PyMem_Free(self.toks)
        PyMem_Free(self.tok_hash)
        PyMem_Free(self.folded)

    def __init__(self, dict key_ids, dict wake, list queries, list members, Py_ssize_t watches,
                 int max_outcomes, fold, hit_type):
        """``key_ids``: every key and its id; a key is a space, then tokens, ending in a space
        when the last token is whole (else it is a wildcard prefix). ``wake``: key -> the
        queries it wakes. ``queries``: ``agents.watch.plan._Query`` objects (their ``plan``:
        program, terms' fields and keys, labels; and ``static``: the terms a hit names when
        they never vary); ``members``: per query its watches' ``(rank, watch_id, name)``;
        ``watches``: how many. ``max_outcomes``: (query, evidence) hit lists remembered before
        forgetting them all. ``fold(text)``: the text's folded tokens joined by spaces, for
        texts with non-ASCII letters or digits. ``hit_type(watch_id, name, terms)``: a hit."""
        import numpy as np
        cdef list keys = list(key_ids)
        cdef list by_key = [()] * len(keys)
        self.fold = fold
        self.hit_type = hit_type
        self._build_trie(keys)
        for key, woken in wake.items():
            by_key[<Py_ssize_t>key_ids[key]] = woken
        self._build_queries(queries, members, watches, key_ids, by_key)
        offsets = [0]
        flat = []
        for woken in by_key:
            flat.extend([self.q_at[q] for q in woken])
            offsets.append(len(flat))
        self.wake_off = np.array(offsets, dtype=np.int32)
        self.wake_at = np.array(flat, dtype=np.int32)
        self.outcome_limit = max(1, max_outcomes)
        self._forget()
        self.key_fields = np.zeros(len(keys), dtype=np.uint8)
        self.key_head = np.full(len(keys), -1, dtype=np.int32)
        self.touched = <int32_t*>PyMem_Malloc((len(keys) + 1) * sizeof(int32_t))
        if self.touched == NULL:
            raise MemoryError()

    @property
    def remembered(self) -> int:
        """How many (query, evidence) hit lists are remembered now."""
        return len(self.outcome_hits)

    cdef void _forget(self):
        """Forget every remembered outcome. A new list, not a cleared one: a ``Hits`` made
        before still holds the old list, and through it the hits it borrows."""
        self.outcome_hits = []
        self.forget_due = False
        self.generation += 1  # every run's remembered outcomes are stale

    @cython.wraparound(True)
    def _build_trie(self, list keys):
        import numpy as np
        cdef dict children = {}  # (node, token) -> child node
        cdef dict prefixes = {}  # (node, prefix) -> key id
        cdef dict lengths = {}  # node -> its wildcard lengths
        cdef list node_key = [-1]
        cdef Py_ssize_t kid, offset = 0, size, bits
        cdef bytes raw, body, token
        cdef uint64_t h, slot
        for kid in range(len(keys)):
            raw = (<str>keys[kid]).encode("utf-8")
            if not raw.startswith(b" ") or len(raw) < 2 or b"  " in raw:
                raise ValueError(f"not a key: {keys[kid]!r}")
            body = raw[1:]
            exact = body.endswith(b" ")
            parts = body[:-1].split(b" ") if exact else body.split(b" ")
            node = 0
            for token in (parts if exact else parts[:-1]):
                child = children.get((node, token))
                if child is None:
                    child = children[(node, token)] = len(node_key)
                    node_key.append(-1)
                node = child
            if exact:
                node_key[node] = kid
            else:
                prefixes[(node, parts[-1])] = kid
                lengths.setdefault(node, set()).add(len(parts[-1]))
        edges = [(pair, target, 0) for pair, target in children.items()]
        edges += [(pair, target, 1) for pair, target in prefixes.items()]
        size = 16
        while size < 2 * len(edges):
            size <<= 1
        self.mask = size - 1
        self.edges = <Edge*>PyMem_Malloc(size * sizeof(Edge))
        bits = 1 << 16
        while bits < 8 * len(edges) and bits < (1 << 21):  # <= 256 KB: stays in L2
            bits <<= 1
        self.seen_mask = bits - 1
        self.seen = <uint64_t*>PyMem_Malloc((bits // 64) * sizeof(uint64_t))
        if self.edges == NULL or self.seen == NULL:
            raise MemoryError()
        memset(self.edges, 0, size * sizeof(Edge))
        memset(self.seen, 0, (bits // 64) * sizeof(uint64_t))
        chunks = []
        for (node, token), target, kind in edges:
            h = _mix(<uint64_t>node, <uint64_t>kind, _fnv(<const unsigned char*>token, len(token)))
            self.seen[(h >> 20 & self.seen_mask) >> 6] |= (<uint64_t>1) << ((h >> 20) & 63)
            slot = h & self.mask
            while self.edges[slot].hash != 0:
                slot = (slot + 1) & self.mask
            self.edges[slot].hash = h
            self.edges[slot].target = target
            self.edges[slot].offset = offset
            self.edges[slot].length = len(token) | (kind << 30)
            chunks.append(token)
            offset += len(token)
        self.blob = b"".join(chunks)
        self.blob_p = <const unsigned char*>self.blob
        self.n_key = np.array(node_key, dtype=np.int32)
        offs = [0]
        flat = []
        for node in range(len(node_key)):
            flat.extend(sorted(lengths.get(node, ())))
            offs.append(len(flat))
        self.n_plen_off = np.array(offs, dtype=np.int32)
        self.plens = np.array(flat, dtype=np.int32)

    def _build_queries(self, list queries, list members, Py_ssize_t watches, dict key_ids,
                       list by_key):
        """Lay out each query's run (in the order the keys wake them); make the hit of every
        watch whose query's hits never vary (kind 1)."""
        import numpy as np
        cdef Py_ssize_t q, n = 0, cap = 1 << 16, need, o, k, r
        cdef int32_t* data = <int32_t*>PyMem_Malloc(cap * sizeof(int32_t))
        cdef int32_t* grown
        cdef int32_t[::1] at
        cdef int kind
        cdef tuple plan, program, terms, spec, member
        cdef list group
        cdef PyObject* hit
        self.q_at = at = np.zeros(len(queries), dtype=np.int32)
        self.static_hits = [None] * watches
        self.labels = [None] * len(queries)
        self.watches = [None] * len(queries)
        order = list(dict.fromkeys([q for woken in by_key for q in woken]))
        if len(order) < len(queries):
            placed = set(order)
            order += [q for q in range(len(queries)) if q not in placed]
        try:
            for q in order:
                query = queries[q]
                group = <list>members[q]
                plan = query.plan
                if plan is None:
                    kind, program, terms = 0, (), ()
                else:
                    program, terms = <tuple>plan[0], <tuple>plan[1]
                    static = query.static
                    if static is None:
                        kind = 2
                        # Flat (bit, label, ...) and (id, name, ...): a first sight touches
                        # one tuple each, not one per label and per member.
                        self.labels[q] = None if plan[2] is None else \
                            tuple([x for pair in <tuple>plan[2] for x in <tuple>pair])
                        self.watches[q] = tuple([x for member in group for x in (<tuple>member)[1:]])
                    else:
                        kind = 1
                        for member in group:
                            self.static_hits[member[0]] = self.hit_type(member[1], member[2], static)
                need = H_SIZE + len(terms) + len(program) + 3 * len(group) + SEEN_SLOTS * SEEN_INTS
                for spec in terms:
                    need += 2 + len(<tuple>spec[1])
                while n + need > cap:
                    cap *= 2
                    grown = <int32_t*>PyMem_Realloc(data, cap * sizeof(int32_t))
                    if grown == NULL:
                        raise MemoryError()
                    data = grown
                o = n
                at[q] = <int32_t>o
                data[o + H_STAMP] = 0
                data[o + H_QUERY] = <int32_t>q
                data[o + H_KIND] = kind
                data[o + H_TERMS] = len(terms)
                data[o + H_PROGRAM] = len(program)
                data[o + H_MEMBERS] = len(group)
                n = o + H_SIZE + len(terms)
                for k in range(len(program)):
                    data[n + k] = program[k]
                n += len(program)
                for k in range(len(terms)):
                    spec = <tuple>terms[k]
                    data[o + H_SIZE + k] = <int32_t>(n - o)
                    data[n] = spec[0]
                    data[n + 1] = len(<tuple>spec[1])
                    n += 2
                    for key in <tuple>spec[1]:
                        data[n] = key_ids[key]
                        n += 1
                data[o + H_RANKS] = <int32_t>(n - o)
                for member in group:
                    r = member[0]
                    data[n] = <int32_t>r
                    hit = <PyObject*>self.static_hits[r] if kind == 1 else NULL
                    memcpy(data + n + 1, &hit, sizeof(PyObject*))
                    n += 3
                data[o + H_SEEN] = <int32_t>(n - o)
                if kind == 2:
                    for k in range(SEEN_SLOTS * SEEN_INTS):
                        data[n + k] = 0  # generation 0: stale (the first is 1)
                    n += SEEN_SLOTS * SEEN_INTS
        except BaseException:
            PyMem_Free(data)
            raise
        self.qdata = data
        self.qdata_n = n

    def remember(self, int32_t query, uint64_t mask, list hits):
        """The hits (in member order) of a kind-2 query matched with this evidence bitmask:
        later articles get them from the query's run (in a free or stale slot, else the
        slot the mask picks). ``outcome_hits`` keeps each list alive until ``_forget``."""
        self._remember(query, mask, hits)

    cdef int _remember(self, int32_t query, uint64_t mask, list hits) except -1:
        cdef int32_t* slots
        cdef int32_t* slot
        cdef PyObject** items
        cdef int k
        if len(self.outcome_hits) >= self.outcome_limit:
            # Forgotten at the next match, not now: the Hits of this one borrows from the list
            self.forget_due = True
        slots = self.qdata + self.q_at[query]
        slots += slots[H_SEEN]
        slot = slots + SEEN_INTS * (mask % SEEN_SLOTS)
        for k in range(SEEN_SLOTS):
            if slots[SEEN_INTS * k] != self.generation:
                slot = slots + SEEN_INTS * k
                break
        self.outcome_hits.append(hits)
        items = &(<PyListObject*>hits).ob_item[0] if len(hits) else NULL
        slot[0] = self.generation
        memcpy(slot + 1, &mask, sizeof(uint64_t))
        memcpy(slot + 3, &items, sizeof(PyObject**))
        return 0

    def outcomes(self):
        """Every (query, evidence bitmask, hits) remembered now, for a rebuilt matcher's
        kernel to ``remember``: what a worker learned is not lost to a watch change.

        It may run in a rebuild thread while ``match`` runs in the event loop (the GIL can
        pass between them at a Python call): a slot is written whole between two such
        points, and the lists it reads are held in ``lists`` until it returns, so a slot
        either names one of them or is skipped."""
        cdef dict lists = {}
        cdef list out = []
        cdef Py_ssize_t q, k
        cdef const int32_t* slot
        cdef const int32_t* base
        cdef int32_t generation = self.generation
        cdef uint64_t mask
        cdef PyObject** items
        for hits in list(self.outcome_hits):
            if len(<list>hits):
                lists[<Py_ssize_t>&(<PyListObject*>hits).ob_item[0]] = hits
        for q in range(self.q_at.shape[0]):
            base = self.qdata + self.q_at[q]
            if base[H_KIND] != 2:
                continue
            slot = base + base[H_SEEN]
            for k in range(SEEN_SLOTS):
                if slot[0] == generation:
                    memcpy(&mask, slot + 1, sizeof(uint64_t))
                    memcpy(&items, slot + 3, sizeof(PyObject**))
                    hits = lists.get(<Py_ssize_t>items)
                    if hits is not None:
                        out.append((q, mask, hits))
                slot += SEEN_INTS
        return out

    cdef int _make_hits(self, int32_t query, uint64_t mask) except -1:
        """Make and remember the hits of a kind-2 query matched with this evidence: each
        member's, naming the terms the mask shows (all sharing one list)."""
        cdef list terms = []
        cdef tuple labels = <tuple>self.labels[query]
        cdef tuple watches = <tuple>self.watches[query]
        cdef Py_ssize_t k
        for k in range(0, len(labels), 2):
            if mask >> <int>labels[k] & 1:
                terms.append(labels[k + 1])
        hit_type = self.hit_type
        self._remember(query, mask, [hit_type(watches[k], watches[k + 1], terms)
                                    for k in range(0, len(watches), 2)])
        return 0

    cdef inline PyObject** _recall(self, const int32_t* base, uint64_t mask) noexcept:
        """A kind-2 query's remembered hits for this evidence (their list's items), or NULL."""
        cdef const int32_t* slot = base + base[H_SEEN]
        cdef uint64_t seen
        cdef PyObject** items
        cdef int k
        for k in range(SEEN_SLOTS):
            if slot[0] == self.generation:
                memcpy(&seen, slot + 1, sizeof(uint64_t))
                if seen == mask:
                    memcpy(&items, slot + 3, sizeof(PyObject**))
                    return items
            slot += SEEN_INTS
        return NULL

    cdef inline int32_t _probe(self, int32_t node, int kind, uint64_t h,
                               const unsigned char* p, int32_t n) noexcept:
        """The target of the edge (node, token or prefix ``p[:n]``), or -1."""
        cdef uint64_t hh = _mix(<uint64_t>node, <uint64_t>kind, h)
        cdef uint64_t bit = hh >> 20 & self.seen_mask
        if not (self.seen[bit >> 6] >> (bit & 63)) & 1:
            return -1
        cdef uint64_t slot = hh & self.mask
        cdef Edge* e
        while True:
            e = &self.edges[slot]
            if e.hash == 0:
                return -1
            if (e.hash == hh and e.length == (n | (kind << 30))
                    and memcmp(self.blob_p + e.offset, p, n) == 0):
                return e.target
            slot = (slot + 1) & self.mask

    cdef int _record(self, int32_t key, int32_t f, int32_t i, int32_t j) except -1:
        cdef Py_ssize_t n = self.occ_n
        cdef int32_t* grown
        if n == self.occ_cap:
            self.occ_cap *= 2
            grown = <int32_t*>PyMem_Realloc(self.occ, self.occ_cap * 4 * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError()
            self.occ = grown
        if self.key_fields[key] == 0:
            self.touched[self.touched_n] = key
            self.touched_n += 1
        self.key_fields[key] |= <uint8_t>(1 << f)
        self.occ[4 * n] = i
        self.occ[4 * n + 1] = j
        self.occ[4 * n + 2] = f
        self.occ[4 * n + 3] = self.key_head[key]
        self.key_head[key] = <int32_t>n
        self.occ_n = n + 1
        return 0

    cdef int _fold(self, str text) except -1:
        """Fold a text into ``self.folded`` (its length in ``folded_n``): 0 when it holds
        a non-ASCII letter or digit, which Python must fold."""
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), k
        cdef int kind = PyUnicode_KIND(text)
        cdef void* data = PyUnicode_DATA(text)
        cdef const unsigned char* latin
        cdef unsigned char c
        cdef Py_UCS4 ch
        cdef unsigned char* grown
        if n > self.folded_cap:
            grown = <unsigned char*>PyMem_Realloc(self.folded, n)
            if grown == NULL:
                raise MemoryError()
            self.folded, self.folded_cap = grown, n
        if kind == PyUnicode_1BYTE_KIND:
            latin = <const unsigned char*>data
            for k in range(n):
                c = FOLD[latin[k]]
                if c == 1:
                    return 0
                self.folded[k] = c if c else 32
        else:
            for k in range(n):
                ch = PyUnicode_READ(kind, data, k)
                if ch < 256:
                    c = FOLD[ch]
                    if c == 1:
                        return 0
                elif Py_UNICODE_ISALNUM(ch):
                    return 0
                else:
                    c = 0
                self.folded[k] = c if c else 32
        self.folded_n = n
        return 1

    cdef int _scan_text(self, str text, int32_t f) except -1:
        """Scan a title or body: folded here, or by ``self.fold`` (Python) when it holds
        non-ASCII letters or digits."""
        cdef Py_ssize_t size
        cdef const unsigned char* p
        if self._fold(text):
            return self._scan(self.folded, self.folded_n, f)
        folded = self.fold(text)
        p = <const unsigned char*>PyUnicode_AsUTF8AndSize(folded, &size)
        return self._scan(p, size, f)

    cdef int _scan(self, const unsigned char* p, Py_ssize_t size, int32_t f) except -1:
        """Record every key occurrence in one field (folded tokens separated by spaces)."""
        cdef Py_ssize_t k = 0, start, ntok = 0
        cdef int32_t* grown
        cdef uint64_t* grown_hash
        cdef uint64_t h
        while k < size:
            while k < size and p[k] == 32:
                k += 1
            if k >= size:
                break
            start = k
            h = FNV_OFFSET
            while k < size and p[k] != 32:
                h = (h ^ p[k]) * FNV_PRIME
                k += 1
            if ntok == self.tok_cap:
                self.tok_cap *= 2
                grown = <int32_t*>PyMem_Realloc(self.toks, self.tok_cap * 2 * sizeof(int32_t))
                if grown == NULL:
                    raise MemoryError()
                self.toks = grown
                grown_hash = <uint64_t*>PyMem_Realloc(self.tok_hash, self.tok_cap * sizeof(uint64_t))
                if grown_hash == NULL:
                    raise MemoryError()
                self.tok_hash = grown_hash
            self.toks[2 * ntok] = <int32_t>start
            self.toks[2 * ntok + 1] = <int32_t>(k - start)
            self.tok_hash[ntok] = h
            ntok += 1
        cdef Py_ssize_t i, t, q, lo, hi, done
        cdef int32_t node, child, key, n, L
        cdef const unsigned char* tp
        for i in range(ntok):
            node = 0
            for t in range(i, ntok):
                tp = p + self.toks[2 * t]
                n = self.toks[2 * t + 1]
                lo = self.n_plen_off[node]
                hi = self.n_plen_off[node + 1]
                if lo < hi:  # wildcard keys go on from this node: each prefix length
                    h = FNV_OFFSET
                    done = 0
                    for q in range(lo, hi):
                        L = self.plens[q]
                        if L > n:
                            break
                        while done < L:
                            h = (h ^ tp[done]) * FNV_PRIME
                            done += 1
                        key = self._probe(node, 1, h, tp, L)
                        if key >= 0:
                            self._record(key, f, <int32_t>i, <int32_t>t)
                child = self._probe(node, 0, self.tok_hash[t], tp, n)
                if child < 0:
                    break
                node = child
                key = self.n_key[node]
                if key >= 0:
                    self._record(key, f, <int32_t>i, <int32_t>t)
        return 0

    cdef inline bint _present(self, const int32_t* term) noexcept:
        """Whether a term (its record: fields, key count, key ids) occurs in its fields."""
        cdef uint8_t allowed = <uint8_t>term[0]
        cdef int32_t k
        for k in range(term[1]):
            if self.key_fields[term[2 + k]] & allowed:
                return True
        return False

    cdef int _push_span(self, int32_t f, int32_t i, int32_t j, uint64_t leaves) except -1:
        cdef Span* grown
        if self.spans_n == self.spans_cap:
            self.spans_cap *= 2
            grown = <Span*>PyMem_Realloc(self.spans, self.spans_cap * sizeof(Span))
            if grown == NULL:
                raise MemoryError()
            self.spans = grown
        self.spans[self.spans_n].f = f
        self.spans[self.spans_n].i = i
        self.spans[self.spans_n].j = j
        self.spans[self.spans_n].leaves = leaves
        self.spans_n += 1
        return 0

    cdef int _push_pair(self, const Span* a, const Span* b) except -1:
        """The span of two places NEAR pairs: from the first start to the last end."""
        return self._push_span(a.f, a.i if a.i < b.i else b.i, a.j if a.j > b.j else b.j,
                               a.leaves | b.leaves)

    cdef int _near(self, const int32_t* base, const int32_t* pc, const int32_t* end,
                   bint* value, uint64_t* evidence) except -1:
        """Run a span program: whether it leaves spans, and the terms in them (as Near.spans
        does: every pair of places within n tokens, in one field, not overlapping)."""
        cdef Py_ssize_t seg_start[MAX_STACK]
        cdef Py_ssize_t seg_n[MAX_STACK]
        cdef int sp = 0
        cdef int32_t op, arg, f, k, key, o, ia, ja, ib, jb
        cdef Py_ssize_t a, b, first, ls, ln, rs, rn, made
        cdef const int32_t* term
        cdef uint8_t allowed
        cdef Span left, right
        self.spans_n = 0
        while pc < end:
            op = pc[0]
            arg = pc[1]
            pc += 2
            if op == C_SP_TERM:
                first = self.spans_n
                term = base + base[H_SIZE + arg]
                allowed = <uint8_t>term[0]
                for k in range(term[1]):
                    key = term[2 + k]
                    o = self.key_head[key]
                    while o >= 0:
                        f = self.occ[4 * o + 2]
                        if (1 << f) & allowed:
                            self._push_span(f, self.occ[4 * o], self.occ[4 * o + 1],
                                            (<uint64_t>1) << arg)
                        o = self.occ[4 * o + 3]
                seg_start[sp] = first
                seg_n[sp] = self.spans_n - first
                sp += 1
            elif op == C_SP_OR:  # the operands' spans are adjacent: one segment
                sp -= arg
                seg_n[sp] = self.spans_n - seg_start[sp]
                sp += 1
            elif op == C_SP_NEAR:
                sp -= 2
                ls, ln = seg_start[sp], seg_n[sp]
                rs, rn = seg_start[sp + 1], seg_n[sp + 1]
                first = self.spans_n
                if ln * rn > NEAR_PAIRS_SCANNED:
                    self._near_pairs(ls, ln, rs, rn, arg)
                else:
                    for a in range(ls, ls + ln):
                        for b in range(rs, rs + rn):
                            left, right = self.spans[a], self.spans[b]  # copies: the buffer may move
                            if left.f != right.f:
                                continue
                            ia, ja, ib, jb = left.i, left.j, right.i, right.j
                            if (ja < ib and ib - ja - 1 <= arg) or (jb < ia and ia - jb - 1 <= arg):
                                self._push_pair(&left, &right)
                made = self.spans_n - first
                memmove(self.spans + ls, self.spans + first, made * sizeof(Span))
                self.spans_n = ls + made
                seg_start[sp] = ls
                seg_n[sp] = made
                sp += 1
            else:
                raise ValueError(f"unknown span opcode {op}")
        value[0] = seg_n[0] > 0
        evidence[0] = 0
        for a in range(seg_start[0], seg_start[0] + seg_n[0]):
            evidence[0] |= self.spans[a].leaves
        return 0

    cdef int _near_pairs(self, Py_ssize_t ls, Py_ssize_t ln, Py_ssize_t rs, Py_ssize_t rn,
                         int32_t n) except -1:
        """NEAR over many places (agents.watch.query._near_pairs): each left span pairs with the
        right spans that start within ``n`` tokens after it or end within ``n`` before it,
        found by bisection in copies of the right spans sorted by start and by end."""
        cdef Span* by_start = <Span*>PyMem_Malloc(rn * sizeof(Span))
        cdef Span* by_end = <Span*>PyMem_Malloc(rn * sizeof(Span))
        cdef Py_ssize_t a, b
        cdef Span left
        if by_start == NULL or by_end == NULL:
            PyMem_Free(by_start)
            PyMem_Free(by_end)
            raise MemoryError()
        try:
            memcpy(by_start, self.spans + rs, rn * sizeof(Span))
            memcpy(by_end, self.spans + rs, rn * sizeof(Span))
            qsort(by_start, rn, sizeof(Span), _by_start)
            qsort(by_end, rn, sizeof(Span), _by_end)
            for a in range(ls, ls + ln):
                left = self.spans[a]  # a copy: _push_span may move the buffer
                b = _first_at(by_start, rn, left.f, left.j + 1, False)
                while b < rn and by_start[b].f == left.f and by_start[b].i <= left.j + 1 + n:
                    self._push_pair(&left, &by_start[b])
                    b += 1
                b = _first_at(by_end, rn, left.f, left.i - 1 - n, True)
                while b < rn and by_end[b].f == left.f and by_end[b].j <= left.i - 1:
                    self._push_pair(&left, &by_end[b])
                    b += 1
        finally:
            PyMem_Free(by_start)
            PyMem_Free(by_end)
        return 0

    cdef int _evaluate(self, const int32_t* base, bint* value, uint64_t* evidence) except -1:
        """Run a query's program: whether it matches, and the bitmask of its evidence (the
        terms ``_Ctx.terms`` would name: AND all, OR its true branches, NOT none)."""
        cdef bint vals[MAX_STACK]
        cdef uint64_t masks[MAX_STACK]
        cdef int sp = 0, k, true
        cdef const int32_t* pc = base + H_SIZE + base[H_TERMS]
        cdef const int32_t* end = pc + base[H_PROGRAM]
        cdef int32_t op, arg
        cdef bint v
        cdef uint64_t m
        while pc < end:
            op = pc[0]
            arg = pc[1]
            pc += 2
            if op == C_TERM:
                v = self._present(base + base[H_SIZE + arg])
                vals[sp] = v
                masks[sp] = ((<uint64_t>1) << arg) if v else 0
                sp += 1
            elif op == C_AND or op == C_OR:  # a false operand's mask is 0 already
                sp -= arg
                true = 0
                m = 0
                for k in range(sp, sp + arg):
                    true += vals[k]
                    m |= masks[k]
                v = true == arg if op == C_AND else true > 0
                vals[sp] = v
                masks[sp] = m if v else 0
                sp += 1
            elif op == C_NOT:
                vals[sp - 1] = not vals[sp - 1]
                masks[sp - 1] = 0
            elif op == C_NEAR:  # the span program of the next ``arg`` pairs
                self._near(base, pc, pc + 2 * arg, &v, &m)
                pc += 2 * arg
                vals[sp] = v
                masks[sp] = m if v else 0
                sp += 1
            else:
                raise ValueError(f"unknown opcode {op}")
        value[0] = vals[0]
        evidence[0] = masks[0]
        return 0

    def match(self, str title, str text, str meta, bint woken=False):
        """Scan the title, the body and ``meta`` (its pseudo-tokens separated by spaces), wake,
        evaluate: a ``Hits``."""
        cdef Py_ssize_t size
        cdef const unsigned char* p
        cdef Hits result = Hits.__new__(Hits)
        cdef list pending = []
        cdef list rest = []
        cdef list found = []
        cdef list all_woken = [] if woken else None
        cdef list remembered = self.outcome_hits
        cdef PyObject** items
        cdef Ranked* ranked
        cdef Py_ssize_t k, w, r, last
        cdef int32_t key, kind, count
        cdef int32_t* base
        cdef const int32_t* members
        cdef bint v
        cdef uint64_t m
        if self.busy:  # its scratch state is per kernel; a thread switch mid-match would share it
            raise RuntimeError("Kernel.match is not reentrant: match in one thread at a time")
        if self.forget_due:
            self._forget()
            remembered = self.outcome_hits
        result.holders = [self.static_hits, remembered]
        self.occ_n = 0
        self.touched_n = 0
        self.stamp += 1
        if self.stamp >= 0x7FFFFFFF:  # about to wrap: old stamps could collide
            for k in range(self.q_at.shape[0]):
                self.qdata[self.q_at[k] + H_STAMP] = 0
            self.stamp = 1
        self.busy = True
        try:
            self._scan_text(title, 0)
            self._scan_text(text, 1)
            p = <const unsigned char*>PyUnicode_AsUTF8AndSize(meta, &size)
            self._scan(p, size, 2)
            for k in range(self.touched_n):
                key = self.touched[k]
                found.append(key)
                last = self.wake_off[key + 1]
                for w in range(self.wake_off[key], last):
                    if w + 4 < last:  # the runs are far apart in memory: fetch ahead
                        __builtin_prefetch(self.qdata + self.wake_at[w + 4])
                    base = self.qdata + self.wake_at[w]
                    if base[H_STAMP] == self.stamp:
                        continue
                    base[H_STAMP] = self.stamp
                    if woken:
                        all_woken.append(base[H_QUERY])
                    kind = base[H_KIND]
                    if kind == 0:
                        rest.append(base[H_QUERY])
                        continue
                    self._evaluate(base, &v, &m)
                    if not v:
                        continue
                    members = base + base[H_RANKS]
                    count = base[H_MEMBERS]
                    result._reserve(count)
                    ranked = result.ranked + result.n_ranked
                    if kind == 1:
                        for r in range(count):
                            ranked[r].rank = members[3 * r]
                            memcpy(&ranked[r].hit, members + 3 * r + 1, sizeof(PyObject*))
                        result.n_ranked += count
                        continue
                    items = self._recall(base, m)
                    if items == NULL:
                        if self.labels[base[H_QUERY]] is None:
                            pending.append((base[H_QUERY], m))
                            continue
                        self._make_hits(base[H_QUERY], m)
                        items = self._recall(base, m)
                    for r in range(count):
                        ranked[r].rank = members[3 * r]
                        ranked[r].hit = items[r]
                    result.n_ranked += count
        finally:
            self.busy = False
            for k in range(self.touched_n):
                key = self.touched[k]
                self.key_fields[key] = 0
                self.key_head[key] = -1
            self.touched_n = 0
        _sort_by_rank(result.ranked, result.n_ranked)
        result.pending = pending
        result.rest = rest
        result.keys = found
        result.woken = all_woken
        return result
