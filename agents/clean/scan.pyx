# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled first pass of ``agents.clean.core._check_markup``.

It walks the markup once, tokenizing it exactly as ``core._MARKUP_TOKEN`` does (comments,
tags with their attribute parts, raw-text elements that run to their end tag), and returns
the counts the checks need. Python then decides: markup whose counts clear every bound is
parsed at once; anything else goes through the regex and the tree model as before, so this
module only ever answers "ordinary" faster, never differently. Where the regex's matching
depends on Unicode case folding (a non-ASCII character in a tag name or a raw-text end
tag) it returns None and Python does the whole check. ``tests/unit/test_markup_scan.py``
holds it to counts computed from the regex.
"""

cdef extern from "Python.h":
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index)
    bint Py_UNICODE_ISSPACE(Py_UCS4 ch)
    object PyUnicode_FromStringAndSize(const char* s, Py_ssize_t size)

# The raw-text elements of core._RAW_TEXT: their text is not markup.
cdef tuple _RAW_TEXT = (
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext",
)
DEF NAME_BUFFER = 64


cdef inline bint _is_letter(Py_UCS4 ch):
    return (ch >= 97 and ch <= 122) or (ch >= 65 and ch <= 90)


cdef inline Py_UCS4 _lower_ascii(Py_UCS4 ch):
    if 65 <= ch <= 90:
        return <Py_UCS4>(<unsigned int>ch + 32)
    return ch


cdef Py_ssize_t _find(int kind, void* data, Py_ssize_t n, Py_ssize_t start, Py_UCS4 ch):
    cdef Py_ssize_t i
    for i in range(start, n):
        if PyUnicode_READ(kind, data, i) == ch:
            return i
    return -1


cdef Py_ssize_t _comment_end(int kind, void* data, Py_ssize_t n, Py_ssize_t start):
    """Just past the first "-->" at or after ``start``, or ``n``."""
    cdef Py_ssize_t i = start
    while i + 2 < n:
        if (PyUnicode_READ(kind, data, i) == 45 and PyUnicode_READ(kind, data, i + 1) == 45
                and PyUnicode_READ(kind, data, i + 2) == 62):
            return i + 3
        i += 1
    return n


cdef Py_ssize_t _raw_text_end(int kind, void* data, Py_ssize_t n, Py_ssize_t start,
                              const char* name, Py_ssize_t size):
    """Where the raw text from ``start`` ends: the "<" of "</name" (any case), or ``n``;
    -2 when a non-ASCII character decides whether an end tag matches."""
    cdef Py_ssize_t i = start, k
    cdef Py_UCS4 ch
    while True:
        i = _find(kind, data, n, i, 60)
        if i < 0:
            return n
        if i + 1 < n and PyUnicode_READ(kind, data, i + 1) == 47:
            for k in range(size):
                if i + 2 + k >= n:
                    break
                ch = PyUnicode_READ(kind, data, i + 2 + k)
                if ch > 127:
                    return -2
                if _lower_ascii(ch) != <Py_UCS4>name[k]:
                    break
            else:
                return i
        i += 1


cdef void _count_separators(int kind, void* data, Py_ssize_t start, Py_ssize_t end,
                           long* separators, long* equals):
    """Count the characters of ``core._most_attributes``'s two terms: " \t\n\r\f/=" (bytes,
    in UTF-8, but these are ASCII) and "="."""
    cdef Py_ssize_t i
    cdef Py_UCS4 ch
    for i in range(start, end):
        ch = PyUnicode_READ(kind, data, i)
        if ch == 61:
            separators[0] += 1
            equals[0] += 1
        elif ch == 32 or ch == 9 or ch == 10 or ch == 13 or ch == 12 or ch == 47:
            separators[0] += 1


def markup_counts(str markup, dict depth_step, dict formatting_step):
    """(tags, highest depth, highest open formatting, <option>/<optgroup> start tags,
    <html> start tags, their attributes, <body> start tags, their attributes, the most
    attributes of a tag, non-empty attribute parts, their characters, their separators,
    their "=" characters), each as ``core._check_markup`` computes it from the regex's tokens;
    "attributes" are ``core._most_attributes`` (at least the number of attributes) and the
    separators are its " \\t\\n\\r\\f/=" characters. None when the regex's result depends on
    Unicode case folding."""
    cdef int kind = PyUnicode_KIND(markup)
    cdef void* data = PyUnicode_DATA(markup)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(markup)
    cdef Py_ssize_t i = 0, j, name_end, k, quote_end, size
    cdef Py_UCS4 ch, quote
    cdef bytes encoded
    cdef char buffer[NAME_BUFFER]
    cdef bint closing, non_ascii
    cdef long tags = 0, options = 0, html_tags = 0, body_tags = 0, html_attributes = 0
    cdef long body_attributes = 0, most_attributes = 0, tag_separators, tag_equals
    cdef long depth = 0, depth_low = 0, depth_high = 0
    cdef long formatting = 0, formatting_low = 0, formatting_high = 0
    cdef long rests = 0, rest_chars = 0, separators = 0, equals = 0, length
    cdef object name, step
    cdef str raw_name
    while True:
        i = _find(kind, data, n, i, 60)
        if i < 0 or i + 1 >= n:
            break
        ch = PyUnicode_READ(kind, data, i + 1)
        if ch == 33:  # "<!": a comment only as "<!--"
            if (i + 3 < n and PyUnicode_READ(kind, data, i + 2) == 45
                    and PyUnicode_READ(kind, data, i + 3) == 45):
                i = _comment_end(kind, data, n, i + 4)
            else:
                i += 1
            continue
        closing = ch == 47
        j = i + 2 if closing else i + 1
        if j >= n or not _is_letter(PyUnicode_READ(kind, data, j)):
            i += 1
            continue
        # The name: "/"? and a letter, up to whitespace, "/" or ">".
        name_end = j + 1
        non_ascii = False
        while name_end < n:
            ch = PyUnicode_READ(kind, data, name_end)
            if ch == 47 or ch == 62 or Py_UNICODE_ISSPACE(ch):
                break
            if ch > 127:
                non_ascii = True
            name_end += 1
        if non_ascii:
            return None
        size = name_end - (i + 1)
        if size > NAME_BUFFER:
            name = markup[i + 1:name_end].lower()
        else:
            for k in range(size):
                buffer[k] = <char>_lower_ascii(PyUnicode_READ(kind, data, i + 1 + k))
            name = PyUnicode_FromStringAndSize(buffer, size)
        tags += 1
        step = depth_step.get(name)
        depth += 1 if step is None else <long>step
        if depth > depth_high:
            depth_high = depth
        elif depth < depth_low:
            depth_low = depth
        step = formatting_step.get(name)
        if step is not None:
            formatting += <long>step
            if formatting > formatting_high:
                formatting_high = formatting
            elif formatting < formatting_low:
                formatting_low = formatting
        # The attribute part: up to ">", except inside a value quoted right after "=".
        k = name_end
        while k < n:
            ch = PyUnicode_READ(kind, data, k)
            if ch == 62:
                break
            k += 1
            if ch == 61:
                while k < n and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k)):
                    k += 1
                if k < n:
                    quote = PyUnicode_READ(kind, data, k)
                    if quote == 34 or quote == 39:
                        quote_end = _find(kind, data, n, k + 1, quote)
                        k = n if quote_end < 0 else quote_end + 1
        tag_separators = tag_equals = 0
        _count_separators(kind, data, name_end, k, &tag_separators, &tag_equals)
        separators += tag_separators
        equals += tag_equals
        length = k - name_end
        if length:
            rests += 1
            rest_chars += length
            if tag_separators + tag_equals > most_attributes:
                most_attributes = tag_separators + tag_equals
        if not closing:
            if name == "option" or name == "optgroup":
                options += 1
            elif name == "html":
                html_tags += 1
                html_attributes += tag_separators + tag_equals
            elif name == "body":
                body_tags += 1
                body_attributes += tag_separators + tag_equals
        i = k
        if not closing and k < n and name in _RAW_TEXT:
            raw_name = name
            size = len(raw_name)
            encoded = raw_name.encode("ascii")
            i = _raw_text_end(kind, data, n, k + 1, encoded, size)
            if i == -2:
                return None
    return (tags, depth_high - depth_low, formatting_high - formatting_low, options, html_tags,
            html_attributes, body_tags, body_attributes, most_attributes, rests, rest_chars,
            separators, equals)
