//! qjson-crates: the qjson-demo parser with real crate dependencies (memchr, once_cell),
//! shaped like lua-qjson's build: crates from a registry, a lockfile-v4 Cargo.lock.
//!
//! This is NOT the real decoder. It is a small, eager, recursive-descent JSON
//! parser that exposes the part of the lua-qjson C ABI the demo Lua modules use:
//!
//! ```c
//! const char* qjson_strerror(int code);
//! qjson_doc*  qjson_parse  (const uint8_t* buf, size_t len, int* err_out);
//! void        qjson_free   (qjson_doc* doc);
//! int qjson_get_str(qjson_doc*, const char* path, size_t path_len,
//!                   const uint8_t** out_ptr, size_t* out_len);
//! int qjson_get_i64(qjson_doc*, const char* path, size_t path_len, int64_t* out);
//! ```
//!
//! Error codes use the same numbers as lua-qjson's `qjson_err` enum, and paths
//! use the same syntax: dotted object keys plus `[N]` array indices
//! (`body.messages[0].role`); the empty path is the root value.
//!
//! Every exported function is NULL-safe and stops panics at the FFI boundary.
//! The parsed document owns copies of all strings, so the input buffer may be
//! released after `qjson_parse` returns, and pointers handed out by
//! `qjson_get_str` stay valid until `qjson_free`.
//!
//! Needs a cargo that reads lockfile v4 (1.78 or newer: Debian's cargo-web).

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use once_cell::sync::Lazy;

// ---------------------------------------------------------------------------
// Error codes (numbering shared with lua-qjson's include/qjson.h)
// ---------------------------------------------------------------------------

pub const QJSON_OK: c_int = 0;
pub const QJSON_PARSE_ERROR: c_int = 1;
pub const QJSON_NOT_FOUND: c_int = 2;
pub const QJSON_TYPE_MISMATCH: c_int = 3;
pub const QJSON_OUT_OF_RANGE: c_int = 4;
pub const QJSON_DECODE_FAILED: c_int = 5;
pub const QJSON_INVALID_PATH: c_int = 6;
pub const QJSON_INVALID_ARG: c_int = 7;
pub const QJSON_OOM: c_int = 8;
pub const QJSON_NESTING_TOO_DEEP: c_int = 9;
pub const QJSON_TRAILING_CONTENT: c_int = 10;
pub const QJSON_NUMBER_OUT_OF_RANGE: c_int = 11;
pub const QJSON_INVALID_NUMBER: c_int = 12;
pub const QJSON_INVALID_STRING: c_int = 13;
pub const QJSON_INVALID_UTF8: c_int = 14;

/// Deepest container nesting accepted (lua-qjson's default `max_depth`).
pub const MAX_DEPTH: usize = 1024;

fn message(code: c_int) -> &'static [u8] {
    // Every message is NUL-terminated static storage; callers must not free it.
    match code {
        QJSON_OK => b"ok\0",
        QJSON_PARSE_ERROR => b"malformed JSON\0",
        QJSON_NOT_FOUND => b"no value at path\0",
        QJSON_TYPE_MISMATCH => b"value at path has another type\0",
        QJSON_OUT_OF_RANGE => b"integer does not fit in int64\0",
        QJSON_DECODE_FAILED => b"value could not be decoded\0",
        QJSON_INVALID_PATH => b"malformed path\0",
        QJSON_INVALID_ARG => b"invalid argument (NULL pointer)\0",
        QJSON_OOM => b"out of memory or internal failure\0",
        QJSON_NESTING_TOO_DEEP => b"containers nested deeper than 1024 levels\0",
        QJSON_TRAILING_CONTENT => b"unexpected content after the JSON value\0",
        QJSON_NUMBER_OUT_OF_RANGE => b"number is not representable\0",
        QJSON_INVALID_NUMBER => b"number does not follow RFC 8259\0",
        QJSON_INVALID_STRING => b"bad escape or raw control character in string\0",
        QJSON_INVALID_UTF8 => b"string is not valid UTF-8\0",
        _ => b"unknown qjson error code\0",
    }
}

// ---------------------------------------------------------------------------
// Document model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's source text, already checked against the RFC 8259 grammar.
    Num(Vec<u8>),
    /// Decoded (unescaped) UTF-8 bytes.
    Str(Vec<u8>),
    Arr(Vec<Value>),
    /// Members in source order; duplicate keys are kept, lookups take the first.
    Obj(Vec<(Vec<u8>, Value)>),
}

/// Opaque handle given to C as `qjson_doc*`.
pub struct qjson_doc {
    root: Value,
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Bytes that can end a run of ordinary string bytes, besides '"' and '\\'.
static CONTROL: Lazy<[bool; 256]> = Lazy::new(|| {
    let mut table = [false; 256];
    for b in 0..0x20 {
        table[b] = true;
    }
    table
});

/// Where the run of ordinary string bytes from `start` ends: memchr finds the next quote or
/// backslash, then the run is cut at the first control byte before it.
fn run_end(buf: &[u8], start: usize) -> usize {
    let rest = &buf[start..];
    let stop = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
    let cut = rest[..stop].iter().position(|&b| CONTROL[b as usize]).unwrap_or(stop);
    start + cut
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\n' || b == b'\r'
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if !is_ws(b) {
                break;
            }
            self.pos += 1;
        }
    }

    fn expect(&mut self, want: u8) -> Result<(), c_int> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(QJSON_PARSE_ERROR)
        }
    }

    /// `depth` is the number of containers already open around this value.
    fn value(&mut self, depth: usize) -> Result<Value, c_int> {
        match self.peek() {
            None => Err(QJSON_PARSE_ERROR),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b) if b == b'-' || b.is_ascii_digit() => self.number(),
            Some(_) => Err(QJSON_PARSE_ERROR),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, c_int> {
        let end = self.pos + word.len();
        if end <= self.buf.len() && &self.buf[self.pos..end] == word {
            self.pos = end;
            Ok(v)
        } else {
            Err(QJSON_PARSE_ERROR)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, c_int> {
        if depth > MAX_DEPTH {
            return Err(QJSON_NESTING_TOO_DEEP);
        }
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Obj(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(QJSON_PARSE_ERROR);
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let v = self.value(depth)?;
            members.push((key, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Obj(members));
                }
                _ => return Err(QJSON_PARSE_ERROR),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, c_int> {
        if depth > MAX_DEPTH {
            return Err(QJSON_NESTING_TOO_DEEP);
        }
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Arr(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Arr(items));
                }
                _ => return Err(QJSON_PARSE_ERROR),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !b.is_ascii_digit() {
                break;
            }
            self.pos += 1;
        }
        self.pos - start
    }

    /// number = [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ("e"/"E") ["+"/"-"] 1*DIGIT ]
    fn number(&mut self) -> Result<Value, c_int> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                // A leading zero may not be followed by more digits ("01").
                if matches!(self.peek(), Some(b) if b.is_ascii_digit()) {
                    return Err(QJSON_INVALID_NUMBER);
                }
            }
            Some(b) if b.is_ascii_digit() => {
                self.digits();
            }
            _ => return Err(QJSON_INVALID_NUMBER),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(QJSON_INVALID_NUMBER);
            }
        }
        if let Some(b'e') | Some(b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+') | Some(b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(QJSON_INVALID_NUMBER);
            }
        }
        Ok(Value::Num(self.buf[start..self.pos].to_vec()))
    }

    fn hex4(&mut self) -> Result<u32, c_int> {
        let end = self.pos + 4;
        if end > self.buf.len() {
            return Err(QJSON_INVALID_STRING);
        }
        let mut v: u32 = 0;
        for &b in &self.buf[self.pos..end] {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(QJSON_INVALID_STRING),
            };
            v = (v << 4) | u32::from(d);
        }
        self.pos = end;
        Ok(v)
    }

    /// Parses a string starting at its opening quote; returns decoded bytes.
    fn string(&mut self) -> Result<Vec<u8>, c_int> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            // Copy a run of ordinary bytes. The run ends only at ASCII bytes
            // ('"', '\\', control characters), which can never sit inside a
            // valid multi-byte UTF-8 sequence, so each run can be validated
            // on its own.
            let run_start = self.pos;
            self.pos = run_end(self.buf, self.pos);
            let run = &self.buf[run_start..self.pos];
            if std::str::from_utf8(run).is_err() {
                return Err(QJSON_INVALID_UTF8);
            }
            out.extend_from_slice(run);

            match self.peek() {
                None => return Err(QJSON_PARSE_ERROR), // unterminated string
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(QJSON_INVALID_STRING), // raw control character
            }
        }
    }

    /// Decodes one escape sequence; `self.pos` is just after the backslash.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), c_int> {
        let b = match self.peek() {
            Some(b) => b,
            None => return Err(QJSON_PARSE_ERROR),
        };
        self.pos += 1;
        let simple = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let cp = self.unicode_escape()?;
                let c = char::from_u32(cp).ok_or(QJSON_INVALID_STRING)?;
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                return Ok(());
            }
            _ => return Err(QJSON_INVALID_STRING),
        };
        out.push(simple);
        Ok(())
    }

    /// Reads the XXXX of `\uXXXX` (and a following low surrogate escape when
    /// the first unit is a high surrogate). Unpaired surrogates are rejected.
    fn unicode_escape(&mut self) -> Result<u32, c_int> {
        let hi = self.hex4()?;
        if (0xDC00..=0xDFFF).contains(&hi) {
            return Err(QJSON_INVALID_STRING);
        }
        if !(0xD800..=0xDBFF).contains(&hi) {
            return Ok(hi);
        }
        if self.buf.get(self.pos) != Some(&b'\\') || self.buf.get(self.pos + 1) != Some(&b'u') {
            return Err(QJSON_INVALID_STRING);
        }
        self.pos += 2;
        let lo = self.hex4()?;
        if !(0xDC00..=0xDFFF).contains(&lo) {
            return Err(QJSON_INVALID_STRING);
        }
        Ok(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    }
}

/// Parses one complete JSON text (surrounding whitespace allowed).
pub fn parse_document(buf: &[u8]) -> Result<Value, c_int> {
    let mut p = Parser { buf, pos: 0 };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != buf.len() {
        return Err(QJSON_TRAILING_CONTENT);
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// Paths: "" (root), "a", "a.b", "a[0]", "a[0].b", "[2][1]"
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a [u8]),
    Idx(u32),
}

/// Splits a path into segments.
///
/// A key is a non-empty run of bytes other than `.` and `[`; it starts the
/// path or follows a `.`. An index is `[` one-or-more ASCII digits `]` and
/// must fit in 32 bits. Anything else (`a.`, `a..b`, `a[`, `a[x]`, `a[]`,
/// `a[0]b`) is `QJSON_INVALID_PATH`.
pub fn parse_path(path: &[u8]) -> Result<Vec<Seg<'_>>, c_int> {
    let mut segs = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'[' {
            let close = match path[i + 1..].iter().position(|&c| c == b']') {
                Some(off) => i + 1 + off,
                None => return Err(QJSON_INVALID_PATH),
            };
            let digits = &path[i + 1..close];
            if digits.is_empty() {
                return Err(QJSON_INVALID_PATH);
            }
            let mut n: u32 = 0;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return Err(QJSON_INVALID_PATH);
                }
                n = n
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u32::from(d - b'0')))
                    .ok_or(QJSON_INVALID_PATH)?;
            }
            segs.push(Seg::Idx(n));
            i = close + 1;
            continue;
        }
        let key_start = if b == b'.' {
            i + 1
        } else if i == 0 {
            i
        } else {
            // Only reachable right after "]": a key there needs a '.'.
            return Err(QJSON_INVALID_PATH);
        };
        let key_len = path[key_start..]
            .iter()
            .position(|&c| c == b'.' || c == b'[')
            .unwrap_or(path.len() - key_start);
        if key_len == 0 {
            return Err(QJSON_INVALID_PATH);
        }
        segs.push(Seg::Key(&path[key_start..key_start + key_len]));
        i = key_start + key_len;
    }
    Ok(segs)
}

/// Follows `path` from `root`. A key applied to a non-object or an index
/// applied to a non-array is a type mismatch; a missing key or an index past
/// the end is "not found".
pub fn lookup<'v>(root: &'v Value, path: &[u8]) -> Result<&'v Value, c_int> {
    let segs = parse_path(path)?;
    let mut cur = root;
    for seg in segs {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Obj(members)) => match members.iter().find(|m| m.0 == k) {
                Some(m) => &m.1,
                None => return Err(QJSON_NOT_FOUND),
            },
            (Seg::Idx(i), Value::Arr(items)) => match items.get(i as usize) {
                Some(v) => v,
                None => return Err(QJSON_NOT_FOUND),
            },
            _ => return Err(QJSON_TYPE_MISMATCH),
        };
    }
    Ok(cur)
}

/// Integer value of a number's source text, as lua-qjson's get_i64 sees it:
/// a fraction or exponent is a type mismatch, overflow is out of range.
pub fn number_to_i64(text: &[u8]) -> Result<i64, c_int> {
    if text.iter().any(|&b| b == b'.' || b == b'e' || b == b'E') {
        return Err(QJSON_TYPE_MISMATCH);
    }
    let (neg, digits) = match text.split_first() {
        Some((&b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(QJSON_INVALID_NUMBER);
    }
    // Accumulate towards the sign so that i64::MIN is representable.
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(QJSON_INVALID_NUMBER);
        }
        let d = i64::from(b - b'0');
        let next = v.checked_mul(10).and_then(|x| {
            if neg {
                x.checked_sub(d)
            } else {
                x.checked_add(d)
            }
        });
        v = match next {
            Some(n) => n,
            None => return Err(QJSON_OUT_OF_RANGE),
        };
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// C ABI
// ---------------------------------------------------------------------------

/// Runs `f`, turning a panic into `QJSON_OOM` so no unwind crosses the FFI boundary.
fn guard<F: FnOnce() -> c_int>(f: F) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(_) => QJSON_OOM,
    }
}

/// Resolves `(doc, path, path_len)` to a value inside a live document.
///
/// # Safety
/// `doc` must be NULL or a live pointer from `qjson_parse`; `path` must be
/// NULL (only with `path_len == 0`) or point to `path_len` readable bytes.
unsafe fn resolve<'d>(
    doc: *const qjson_doc,
    path: *const c_char,
    path_len: usize,
) -> Result<&'d Value, c_int> {
    if doc.is_null() || (path.is_null() && path_len != 0) {
        return Err(QJSON_INVALID_ARG);
    }
    let p: &[u8] = if path_len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(path as *const u8, path_len)
    };
    lookup(&(*doc).root, p)
}

/// Returns a static, NUL-terminated description of `code`. Never NULL.
#[no_mangle]
pub extern "C" fn qjson_strerror(code: c_int) -> *const c_char {
    message(code).as_ptr() as *const c_char
}

/// Parses `len` bytes at `buf`. Returns a document to release with
/// `qjson_free`, or NULL with the error code stored in `*err_out`
/// (when `err_out` is not NULL). `*err_out` is `QJSON_OK` on success.
///
/// # Safety
/// `buf` must point to `len` readable bytes (it is copied from, not kept);
/// `err_out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qjson_parse(
    buf: *const u8,
    len: usize,
    err_out: *mut c_int,
) -> *mut qjson_doc {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if buf.is_null() {
            return Err(QJSON_INVALID_ARG);
        }
        let input = std::slice::from_raw_parts(buf, len);
        parse_document(input).map(|root| Box::into_raw(Box::new(qjson_doc { root })))
    }));
    let (doc, code) = match result {
        Ok(Ok(doc)) => (doc, QJSON_OK),
        Ok(Err(code)) => (ptr::null_mut(), code),
        Err(_) => (ptr::null_mut(), QJSON_OOM),
    };
    if !err_out.is_null() {
        *err_out = code;
    }
    doc
}

/// Releases a document. NULL is ignored.
///
/// # Safety
/// `doc` must be NULL or a pointer from `qjson_parse` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn qjson_free(doc: *mut qjson_doc) {
    if doc.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(doc))));
}

/// Stores the decoded string at `path` as `(*out_ptr, *out_len)`. The bytes
/// are not NUL-terminated and stay valid until the document is freed.
///
/// # Safety
/// See `resolve`; `out_ptr` and `out_len` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qjson_get_str(
    doc: *mut qjson_doc,
    path: *const c_char,
    path_len: usize,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        if out_ptr.is_null() || out_len.is_null() {
            return QJSON_INVALID_ARG;
        }
        match resolve(doc, path, path_len) {
            Ok(Value::Str(s)) => {
                *out_ptr = s.as_ptr();
                *out_len = s.len();
                QJSON_OK
            }
            Ok(_) => QJSON_TYPE_MISMATCH,
            Err(code) => code,
        }
    })
}

/// Stores the integer at `path` in `*out`.
///
/// # Safety
/// See `resolve`; `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qjson_get_i64(
    doc: *mut qjson_doc,
    path: *const c_char,
    path_len: usize,
    out: *mut i64,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return QJSON_INVALID_ARG;
        }
        match resolve(doc, path, path_len) {
            Ok(Value::Num(text)) => match number_to_i64(text) {
                Ok(v) => {
                    *out = v;
                    QJSON_OK
                }
                Err(code) => code,
            },
            Ok(_) => QJSON_TYPE_MISMATCH,
            Err(code) => code,
        }
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn parse(s: &str) -> Result<Value, c_int> {
        parse_document(s.as_bytes())
    }

    fn str_val(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    fn num(s: &str) -> Value {
        Value::Num(s.as_bytes().to_vec())
    }

    #[test]
    fn scalars() {
        assert_eq!(parse("true"), Ok(Value::Bool(true)));
        assert_eq!(parse(" false "), Ok(Value::Bool(false)));
        assert_eq!(parse("\n\tnull\r\n"), Ok(Value::Null));
        assert_eq!(parse("\"hi\""), Ok(str_val("hi")));
        assert_eq!(parse("-12.5e+3"), Ok(num("-12.5e+3")));
        assert_eq!(parse("0"), Ok(num("0")));
    }

    #[test]
    fn containers() {
        let v = parse(r#"{"a": [1, {"b": null}], "c": {}, "d": []}"#).unwrap();
        let want = Value::Obj(vec![
            (
                b"a".to_vec(),
                Value::Arr(vec![
                    num("1"),
                    Value::Obj(vec![(b"b".to_vec(), Value::Null)]),
                ]),
            ),
            (b"c".to_vec(), Value::Obj(vec![])),
            (b"d".to_vec(), Value::Arr(vec![])),
        ]);
        assert_eq!(v, want);
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            parse(r#""a\"b\\c\/d\b\f\n\r\t""#),
            Ok(str_val("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        );
        assert_eq!(parse(r#""\u0041\u00e9\u4e2d""#), Ok(str_val("Aé中")));
        assert_eq!(parse(r#""\ud83d\ude00""#), Ok(str_val("\u{1F600}")));
        assert_eq!(parse(r#""\u0000""#), Ok(str_val("\u{0}")));
        assert_eq!(parse("\"raw é 中 😀\""), Ok(str_val("raw é 中 😀")));
    }

    #[test]
    fn string_errors() {
        assert_eq!(parse(r#""\x""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse(r#""\u12""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse(r#""\u12g4""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse(r#""\ud83d""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse(r#""\ud83dx""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse(r#""\ud83d\u0041""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse(r#""\ude00""#), Err(QJSON_INVALID_STRING));
        assert_eq!(parse("\"a\nb\""), Err(QJSON_INVALID_STRING));
        assert_eq!(parse("\"abc"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("\"abc\\"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse_document(b"\"\xff\""), Err(QJSON_INVALID_UTF8));
        assert_eq!(parse_document(b"\"\xc3\""), Err(QJSON_INVALID_UTF8));
        assert_eq!(parse_document(b"\"\xed\xa0\x80\""), Err(QJSON_INVALID_UTF8));
    }

    #[test]
    fn number_grammar() {
        for ok in [
            "0", "-0", "1", "-1", "10", "1.5", "0.25", "1e5", "1E-5", "-3.0e+10",
        ] {
            assert_eq!(parse(ok), Ok(num(ok)), "{}", ok);
        }
        for bad in ["-", "01", "-01", "1.", ".5", "1e", "1e+", "1.e5", "-a"] {
            let r = parse(bad);
            assert!(
                r == Err(QJSON_INVALID_NUMBER) || r == Err(QJSON_PARSE_ERROR),
                "{}",
                bad
            );
        }
        assert_eq!(parse("+1"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("01"), Err(QJSON_INVALID_NUMBER));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse(""), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("   "), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("{"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("[1,]"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("[1 2]"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse(r#"{"a" 1}"#), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse(r#"{"a":1,}"#), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse(r#"{a:1}"#), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("[1]]"), Err(QJSON_TRAILING_CONTENT));
        assert_eq!(parse("{} {}"), Err(QJSON_TRAILING_CONTENT));
        assert_eq!(parse("tru"), Err(QJSON_PARSE_ERROR));
        assert_eq!(parse("nul"), Err(QJSON_PARSE_ERROR));
    }

    #[test]
    fn nesting_limit() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
        let too_deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&too_deep), Err(QJSON_NESTING_TOO_DEEP));
        let objs = r#"{"a":"#.repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&objs), Err(QJSON_NESTING_TOO_DEEP));
    }

    #[test]
    fn path_syntax() {
        assert_eq!(parse_path(b""), Ok(vec![]));
        assert_eq!(parse_path(b"body"), Ok(vec![Seg::Key(b"body")]));
        assert_eq!(
            parse_path(b"body.model"),
            Ok(vec![Seg::Key(b"body"), Seg::Key(b"model")])
        );
        assert_eq!(
            parse_path(b"body.messages[42].role"),
            Ok(vec![
                Seg::Key(b"body"),
                Seg::Key(b"messages"),
                Seg::Idx(42),
                Seg::Key(b"role")
            ])
        );
        assert_eq!(parse_path(b"[5]"), Ok(vec![Seg::Idx(5)]));
        assert_eq!(
            parse_path(b"d[3][1]"),
            Ok(vec![Seg::Key(b"d"), Seg::Idx(3), Seg::Idx(1)])
        );
        assert_eq!(parse_path(b".a"), Ok(vec![Seg::Key(b"a")]));
        assert_eq!(parse_path(b"a]b"), Ok(vec![Seg::Key(b"a]b")]));
        for bad in [
            &b"a."[..],
            b"a..b",
            b"a[3",
            b"a[]",
            b"a[x]",
            b"a[-1]",
            b"a[0]b",
            b".",
        ] {
            assert_eq!(parse_path(bad), Err(QJSON_INVALID_PATH), "{:?}", bad);
        }
        assert_eq!(parse_path(b"[4294967295]"), Ok(vec![Seg::Idx(u32::MAX)]));
        assert_eq!(parse_path(b"[4294967296]"), Err(QJSON_INVALID_PATH));
    }

    #[test]
    fn lookups() {
        let v = parse(r#"{"body":{"model":"m","tags":["a","b"],"dup":1,"dup":2}}"#).unwrap();
        assert_eq!(lookup(&v, b"body.model"), Ok(&str_val("m")));
        assert_eq!(lookup(&v, b"body.tags[1]"), Ok(&str_val("b")));
        assert_eq!(lookup(&v, b"body.tags[2]"), Err(QJSON_NOT_FOUND));
        assert_eq!(lookup(&v, b"body.nope"), Err(QJSON_NOT_FOUND));
        assert_eq!(lookup(&v, b"body.dup"), Ok(&num("1")));
        assert_eq!(lookup(&v, b"[0]"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(lookup(&v, b"body.tags.x"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(lookup(&v, b"body.model.x"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(lookup(&v, b""), Ok(&v));
        // Keys are compared after unescaping.
        let e = parse(r#"{"k\u0065y":1}"#).unwrap();
        assert_eq!(lookup(&e, b"key"), Ok(&num("1")));
    }

    #[test]
    fn i64_conversion() {
        assert_eq!(number_to_i64(b"42"), Ok(42));
        assert_eq!(number_to_i64(b"-7"), Ok(-7));
        assert_eq!(number_to_i64(b"-0"), Ok(0));
        assert_eq!(number_to_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(number_to_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            number_to_i64(b"9223372036854775808"),
            Err(QJSON_OUT_OF_RANGE)
        );
        assert_eq!(
            number_to_i64(b"-9223372036854775809"),
            Err(QJSON_OUT_OF_RANGE)
        );
        assert_eq!(number_to_i64(b"1.0"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(number_to_i64(b"1e3"), Err(QJSON_TYPE_MISMATCH));
    }

    // --- through the C ABI -------------------------------------------------

    fn ffi_parse(s: &[u8]) -> (*mut qjson_doc, c_int) {
        let mut err: c_int = -1;
        let doc = unsafe { qjson_parse(s.as_ptr(), s.len(), &mut err) };
        (doc, err)
    }

    fn ffi_str(doc: *mut qjson_doc, path: &str) -> Result<Vec<u8>, c_int> {
        let mut p: *const u8 = ptr::null();
        let mut n: usize = 0;
        let rc = unsafe {
            qjson_get_str(
                doc,
                path.as_ptr() as *const c_char,
                path.len(),
                &mut p,
                &mut n,
            )
        };
        if rc != QJSON_OK {
            return Err(rc);
        }
        Ok(unsafe { std::slice::from_raw_parts(p, n) }.to_vec())
    }

    fn ffi_i64(doc: *mut qjson_doc, path: &str) -> Result<i64, c_int> {
        let mut out: i64 = 0;
        let rc =
            unsafe { qjson_get_i64(doc, path.as_ptr() as *const c_char, path.len(), &mut out) };
        if rc == QJSON_OK {
            Ok(out)
        } else {
            Err(rc)
        }
    }

    #[test]
    fn ffi_round_trip() {
        let input = br#"{"body":{"model":"gpt-4o","n":42,"tags":["a","b"],"f":1.5}}"#.to_vec();
        let (doc, err) = ffi_parse(&input);
        assert!(!doc.is_null());
        assert_eq!(err, QJSON_OK);
        drop(input); // the document does not borrow the input buffer
        assert_eq!(ffi_str(doc, "body.model"), Ok(b"gpt-4o".to_vec()));
        assert_eq!(ffi_str(doc, "body.tags[1]"), Ok(b"b".to_vec()));
        assert_eq!(ffi_i64(doc, "body.n"), Ok(42));
        assert_eq!(ffi_i64(doc, "body.f"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(ffi_i64(doc, "body.model"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(ffi_str(doc, "body.n"), Err(QJSON_TYPE_MISMATCH));
        assert_eq!(ffi_str(doc, "body.missing"), Err(QJSON_NOT_FOUND));
        assert_eq!(ffi_str(doc, "body..model"), Err(QJSON_INVALID_PATH));
        unsafe { qjson_free(doc) };
    }

    #[test]
    fn ffi_parse_errors() {
        let (doc, err) = ffi_parse(b"{\"a\":");
        assert!(doc.is_null());
        assert_eq!(err, QJSON_PARSE_ERROR);
        let (doc, err) = ffi_parse(b"");
        assert!(doc.is_null());
        assert_eq!(err, QJSON_PARSE_ERROR);
        // err_out may be NULL.
        let doc = unsafe { qjson_parse(b"[".as_ptr(), 1, ptr::null_mut()) };
        assert!(doc.is_null());
        let mut err: c_int = 0;
        let doc = unsafe { qjson_parse(ptr::null(), 3, &mut err) };
        assert!(doc.is_null());
        assert_eq!(err, QJSON_INVALID_ARG);
    }

    #[test]
    fn ffi_null_safety() {
        let (doc, _) = ffi_parse(br#"{"a":"x","n":1}"#);
        let mut p: *const u8 = ptr::null();
        let mut n: usize = 0;
        let mut i: i64 = 0;
        let path = b"a";
        unsafe {
            let cpath = path.as_ptr() as *const c_char;
            assert_eq!(
                qjson_get_str(ptr::null_mut(), cpath, 1, &mut p, &mut n),
                QJSON_INVALID_ARG
            );
            assert_eq!(
                qjson_get_str(doc, cpath, 1, ptr::null_mut(), &mut n),
                QJSON_INVALID_ARG
            );
            assert_eq!(
                qjson_get_str(doc, cpath, 1, &mut p, ptr::null_mut()),
                QJSON_INVALID_ARG
            );
            assert_eq!(
                qjson_get_str(doc, ptr::null(), 1, &mut p, &mut n),
                QJSON_INVALID_ARG
            );
            // NULL path with length 0 is the root (an object here).
            assert_eq!(
                qjson_get_str(doc, ptr::null(), 0, &mut p, &mut n),
                QJSON_TYPE_MISMATCH
            );
            assert_eq!(
                qjson_get_i64(ptr::null_mut(), cpath, 1, &mut i),
                QJSON_INVALID_ARG
            );
            assert_eq!(
                qjson_get_i64(doc, cpath, 1, ptr::null_mut()),
                QJSON_INVALID_ARG
            );
            qjson_free(doc);
            qjson_free(ptr::null_mut());
        }
    }

    #[test]
    fn ffi_empty_string_value() {
        let (doc, _) = ffi_parse(br#"{"e":""}"#);
        assert_eq!(ffi_str(doc, "e"), Ok(Vec::new()));
        unsafe { qjson_free(doc) };
    }

    #[test]
    fn strerror_messages() {
        for code in -1..=20 {
            let p = qjson_strerror(code);
            assert!(!p.is_null());
            let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap();
            assert!(!s.is_empty());
        }
        let ok = unsafe { CStr::from_ptr(qjson_strerror(QJSON_OK)) };
        assert_eq!(ok.to_str().unwrap(), "ok");
    }

    #[test]
    fn guard_turns_panics_into_error_codes() {
        // Silence the default hook's message for the expected panic.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let rc = guard(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(rc, QJSON_OOM);
    }
}
