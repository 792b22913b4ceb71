//! COPY: rows between a table and the client in PostgreSQL's text and CSV formats.
//!
//! The session turns `COPY ... FROM STDIN` into batches of INSERTs inside one transaction and
//! `COPY ... TO STDOUT` into a query whose rows are formatted here; the wire front end only
//! carries the bytes (CopyData messages). This module knows the two formats: [`CopyOptions`]
//! reads the statement's options, [`CopyReader`] splits incoming bytes into rows of fields
//! (rows may arrive split across messages at any byte), and [`format_row`] writes one row.

use sqlparser::ast;

use crate::error::{sqlstate, Result, SqlError};
use crate::types::text::format_text_into;
use crate::types::Value;

/// What a COPY statement asks of the connection, carried in its result.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyTransfer {
    /// Copy-in: the client now sends rows of `columns` fields (CopyData) until CopyDone; the
    /// connection hands them to the session's `copy_data` and `copy_done`.
    In {
        /// Fields per row.
        columns: usize,
    },
    /// Copy-out: rows to send, one CopyData message each.
    Out {
        /// Fields per row.
        columns: usize,
        /// The formatted rows, back to back.
        data: Vec<u8>,
        /// Where each row (header line included) ends in `data`.
        ends: Vec<usize>,
    },
}

/// The longest row COPY FROM accepts (a row still without its end past this fails with 54000).
pub const MAX_ROW_BYTES: usize = 64 << 20;

/// SQLSTATE: bad COPY file format.
const BAD_COPY_FORMAT: &str = sqlstate::BAD_COPY_FILE_FORMAT;

/// The data format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// PostgreSQL's text format: tab-separated, backslash escapes, `\N` for NULL.
    Text,
    /// Comma-separated values with quoting; an unquoted empty field is NULL.
    Csv,
}

/// The options of one COPY statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Text or CSV.
    pub format: CopyFormat,
    /// The field separator.
    pub delimiter: u8,
    /// The string that stands for NULL.
    pub null: String,
    /// Whether the first line names the columns (CSV only).
    pub header: bool,
    /// The CSV quote character.
    pub quote: u8,
    /// The CSV escape character (inside quotes, it makes the next quote literal).
    pub escape: u8,
}

impl CopyOptions {
    /// Reads the options of a COPY statement (`WITH (...)` or the old unparenthesised forms).
    pub fn from_ast(options: &[ast::CopyOption], legacy: &[ast::CopyLegacyOption]) -> Result<Self> {
        let mut format = CopyFormat::Text;
        let (mut delimiter, mut null, mut header, mut quote, mut escape) =
            (None, None, false, None, None);
        let ascii = |c: char, what: &str| -> Result<u8> {
            if c.is_ascii() && c != '\r' && c != '\n' {
                Ok(c as u8)
            } else {
                Err(SqlError::unsupported(format!(
                    "COPY {what} must be a single one-byte character"
                )))
            }
        };
        for o in options {
            match o {
                ast::CopyOption::Format(name) => {
                    format = match name.value.to_lowercase().as_str() {
                        "text" => CopyFormat::Text,
                        "csv" => CopyFormat::Csv,
                        "binary" => {
                            return Err(SqlError::unsupported(
                                "COPY in binary format is not supported; use text or csv",
                            ))
                        }
                        other => {
                            return Err(SqlError::new(
                                sqlstate::INVALID_PARAMETER_VALUE,
                                format!("COPY format \"{other}\" not recognized"),
                            ))
                        }
                    }
                }
                ast::CopyOption::Freeze(_) => {}
                ast::CopyOption::Delimiter(c) => delimiter = Some(ascii(*c, "delimiter")?),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => header = *h,
                ast::CopyOption::Quote(c) => quote = Some(ascii(*c, "quote")?),
                ast::CopyOption::Escape(c) => escape = Some(ascii(*c, "escape")?),
                ast::CopyOption::Encoding(e) => check_encoding(e)?,
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COPY option {other} is not supported"
                    )))
                }
            }
        }
        for o in legacy {
            match o {
                ast::CopyLegacyOption::Binary => {
                    return Err(SqlError::unsupported(
                        "COPY in binary format is not supported; use text or csv",
                    ))
                }
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(ascii(*c, "delimiter")?),
                ast::CopyLegacyOption::Null(s) => null = Some(s.clone()),
                ast::CopyLegacyOption::Csv(csv) => {
                    format = CopyFormat::Csv;
                    for c in csv {
                        match c {
                            ast::CopyLegacyCsvOption::Header => header = true,
                            ast::CopyLegacyCsvOption::Quote(q) => quote = Some(ascii(*q, "quote")?),
                            ast::CopyLegacyCsvOption::Escape(e) => {
                                escape = Some(ascii(*e, "escape")?)
                            }
                            other => {
                                return Err(SqlError::unsupported(format!(
                                    "COPY option {other} is not supported"
                                )))
                            }
                        }
                    }
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COPY option {other} is not supported"
                    )))
                }
            }
        }
        let csv = format == CopyFormat::Csv;
        if !csv && (header || quote.is_some() || escape.is_some()) {
            return Err(SqlError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "COPY HEADER, QUOTE and ESCAPE are available only in CSV mode",
            ));
        }
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let quote = quote.unwrap_or(b'"');
        let opts = CopyOptions {
            format,
            delimiter,
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            header,
            quote,
            escape: escape.unwrap_or(quote),
        };
        if opts.delimiter == b'\\' && !csv
            || opts.null.contains('\r')
            || opts.null.contains('\n')
            || opts.null.as_bytes().contains(&opts.delimiter)
            || csv && opts.delimiter == opts.quote
        {
            return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                "COPY delimiter, quote and null string must differ and must not be a newline",
            ));
        }
        Ok(opts)
    }
}

fn check_encoding(e: &str) -> Result<()> {
    let u = e.to_uppercase().replace(['-', '_'], "");
    if u == "UTF8" || u == "UNICODE" {
        Ok(())
    } else {
        Err(SqlError::unsupported(format!(
            "COPY encoding \"{e}\" is not supported; reefdb speaks UTF8 only"
        )))
    }
}

fn bad_format(line: u64, message: impl Into<String>) -> SqlError {
    SqlError::new(BAD_COPY_FORMAT, message.into()).with_detail(format!("COPY, line {line}"))
}

/// Splits COPY input into rows of fields. Bytes may be pushed in pieces of any size.
#[derive(Debug)]
pub struct CopyReader {
    opts: CopyOptions,
    /// Bytes of a row not yet complete.
    pending: Vec<u8>,
    /// The number of the next line (1-based, for error messages).
    line: u64,
    /// Whether the header line still has to be skipped.
    skip_header: bool,
    /// Set after the end-of-data marker `\.`; later input is ignored.
    ended: bool,
}

/// A row's fields: None for NULL.
pub type Fields = Vec<Option<String>>;

impl CopyReader {
    /// A reader for input in the given options' format.
    pub fn new(opts: CopyOptions) -> Self {
        CopyReader {
            skip_header: opts.header,
            opts,
            pending: Vec::new(),
            line: 1,
            ended: false,
        }
    }

    /// The line number the next row starts on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Adds input and appends every row it completes to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Fields>) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some((fields, used)) = self.next_row(&pending[start..], false)? {
            start += used;
            if let Some(f) = fields {
                out.push(f);
            }
            if self.ended {
                break;
            }
        }
        pending.drain(..start);
        if pending.len() > MAX_ROW_BYTES {
            return Err(SqlError::new(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!("COPY row is longer than {MAX_ROW_BYTES} bytes"),
            )
            .with_detail(format!("COPY, line {}", self.line)));
        }
        self.pending = pending;
        Ok(())
    }

    /// Ends the input: a last row without a newline counts; an unterminated CSV quote fails.
    pub fn finish(&mut self, out: &mut Vec<Fields>) -> Result<()> {
        if self.ended || self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        if let Some((Some(fields), _)) = self.next_row(&pending, true)? {
            out.push(fields);
        }
        Ok(())
    }

    /// Parses one row from the front of `buf`: Some((fields, bytes used)) when a whole row is
    /// there (fields None for a skipped header or the end marker), None when more input is
    /// needed. With `last`, the end of `buf` ends the row.
    fn next_row(&mut self, buf: &[u8], last: bool) -> Result<Option<(Option<Fields>, usize)>> {
        let parsed = match self.opts.format {
            CopyFormat::Text => self.text_row(buf, last)?,
            CopyFormat::Csv => self.csv_row(buf, last)?,
        };
        let Some((fields, used, lines)) = parsed else {
            return Ok(None);
        };
        self.line += lines;
        if self.skip_header {
            self.skip_header = false;
            return Ok(Some((None, used)));
        }
        Ok(Some((fields, used)))
    }

    fn text_row(&mut self, buf: &[u8], last: bool) -> Result<Option<(Option<Fields>, usize, u64)>> {
        let (line, used) = match buf.iter().position(|b| *b == b'\n') {
            Some(n) => (&buf[..n], n + 1),
            None if last => (buf, buf.len()),
            None => return Ok(None),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"\\." {
            self.ended = true;
            return Ok(Some((None, used, 1)));
        }
        // Fields end at delimiters that no backslash escapes.
        let mut raws = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'\\' {
                i += 2;
            } else if line[i] == self.opts.delimiter {
                raws.push(&line[start..i]);
                i += 1;
                start = i;
            } else {
                i += 1;
            }
        }
        raws.push(&line[start.min(line.len())..]);
        let mut fields = Vec::new();
        for raw in raws {
            if raw == self.opts.null.as_bytes() {
                fields.push(None);
                continue;
            }
            let mut v = Vec::with_capacity(raw.len());
            let mut i = 0;
            while i < raw.len() {
                let b = raw[i];
                i += 1;
                if b != b'\\' || i == raw.len() {
                    v.push(b);
                    continue;
                }
                let c = raw[i];
                i += 1;
                match c {
                    b'b' => v.push(8),
                    b'f' => v.push(12),
                    b'n' => v.push(b'\n'),
                    b'r' => v.push(b'\r'),
                    b't' => v.push(b'\t'),
                    b'v' => v.push(11),
                    b'0'..=b'7' => {
                        let mut n = u32::from(c - b'0');
                        for _ in 0..2 {
                            match raw.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    n = n * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        v.push((n & 0xff) as u8);
                    }
                    b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                        let mut n = 0u8;
                        for _ in 0..2 {
                            match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                                Some(d) => {
                                    n = n * 16 + d as u8;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        v.push(n);
                    }
                    other => v.push(other),
                }
            }
            fields.push(Some(self.utf8(v)?));
        }
        Ok(Some((Some(fields), used, 1)))
    }

    fn csv_row(&mut self, buf: &[u8], last: bool) -> Result<Option<(Option<Fields>, usize, u64)>> {
        let CopyOptions {
            delimiter,
            quote,
            escape,
            ..
        } = self.opts;
        let mut fields = Vec::new();
        let mut field = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut lines = 1;
        let mut i = 0;
        // A line holding only the end marker ends the data.
        let first_line_end = buf.iter().position(|b| *b == b'\n');
        let first = &buf[..first_line_end.unwrap_or(buf.len())];
        if first.strip_suffix(b"\r").unwrap_or(first) == b"\\."
            && (first_line_end.is_some() || last)
        {
            self.ended = true;
            return Ok(Some((None, first_line_end.map_or(buf.len(), |n| n + 1), 1)));
        }
        loop {
            let Some(&b) = buf.get(i) else {
                if !last {
                    return Ok(None);
                }
                if in_quotes {
                    return Err(bad_format(self.line, "unterminated CSV quoted field"));
                }
                fields.push(self.csv_field(field, quoted)?);
                return Ok(Some((Some(fields), i, lines)));
            };
            i += 1;
            if in_quotes {
                if b == escape && escape != quote {
                    // The escape makes a following quote or escape literal.
                    match buf.get(i) {
                        Some(&n) if n == quote || n == escape => {
                            field.push(n);
                            i += 1;
                            continue;
                        }
                        None if !last => return Ok(None),
                        _ => {}
                    }
                } else if b == quote {
                    if escape == quote {
                        // A doubled quote is a literal quote; the next byte decides.
                        match buf.get(i) {
                            Some(&n) if n == quote => {
                                field.push(quote);
                                i += 1;
                                continue;
                            }
                            None if !last => return Ok(None),
                            _ => {}
                        }
                    }
                    in_quotes = false;
                    continue;
                }
                if b == b'\n' {
                    lines += 1;
                }
                field.push(b);
            } else if b == quote {
                in_quotes = true;
                quoted = true;
            } else if b == delimiter {
                fields.push(self.csv_field(std::mem::take(&mut field), quoted)?);
                quoted = false;
            } else if b == b'\r' && buf.get(i) == Some(&b'\n') {
                // CRLF ends the row like LF does; the LF is taken next.
            } else if b == b'\r' && i == buf.len() && !last {
                return Ok(None);
            } else if b == b'\n' {
                fields.push(self.csv_field(field, quoted)?);
                return Ok(Some((Some(fields), i, lines)));
            } else {
                field.push(b);
            }
        }
    }

    fn csv_field(&self, field: Vec<u8>, quoted: bool) -> Result<Option<String>> {
        if !quoted && field == self.opts.null.as_bytes() {
            return Ok(None);
        }
        self.utf8(field).map(Some)
    }

    fn utf8(&self, v: Vec<u8>) -> Result<String> {
        String::from_utf8(v).map_err(|_| {
            SqlError::new(
                sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                "invalid byte sequence for encoding \"UTF8\"",
            )
            .with_detail(format!("COPY, line {}", self.line))
        })
    }
}

/// Appends one row in the options' format, ending with a newline. `text` is scratch space.
pub fn format_row(row: &[Value], opts: &CopyOptions, text: &mut String, out: &mut Vec<u8>) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(opts.delimiter);
        }
        if v.is_null() {
            out.extend_from_slice(opts.null.as_bytes());
            continue;
        }
        text.clear();
        format_text_into(v, text);
        match opts.format {
            CopyFormat::Text => {
                for &b in text.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        8 => out.extend_from_slice(b"\\b"),
                        12 => out.extend_from_slice(b"\\f"),
                        11 => out.extend_from_slice(b"\\v"),
                        b if b == opts.delimiter => {
                            out.push(b'\\');
                            out.push(b);
                        }
                        b => out.push(b),
                    }
                }
            }
            CopyFormat::Csv => format_csv_field(text, opts, out),
        }
    }
    out.push(b'\n');
}

/// Appends the header line of a CSV COPY TO.
pub fn format_header(names: &[String], opts: &CopyOptions, out: &mut Vec<u8>) {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(opts.delimiter);
        }
        format_csv_field(n, opts, out);
    }
    out.push(b'\n');
}

fn format_csv_field(text: &str, opts: &CopyOptions, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let needs_quotes = text == opts.null
        || text == "\\."
        || bytes
            .iter()
            .any(|b| *b == opts.delimiter || *b == opts.quote || *b == b'\n' || *b == b'\r');
    if !needs_quotes {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(opts.quote);
    for &b in bytes {
        if b == opts.quote || b == opts.escape {
            out.push(opts.escape);
        }
        out.push(b);
    }
    out.push(opts.quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(format: CopyFormat) -> CopyOptions {
        let csv = format == CopyFormat::Csv;
        CopyOptions {
            format,
            delimiter: if csv { b',' } else { b'\t' },
            null: if csv { String::new() } else { "\\N".into() },
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }

    fn read_all(opts: CopyOptions, chunks: &[&[u8]]) -> Result<Vec<Fields>> {
        let mut r = CopyReader::new(opts);
        let mut out = Vec::new();
        for c in chunks {
            r.push(c, &mut out)?;
        }
        r.finish(&mut out)?;
        Ok(out)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_rows_with_escapes_nulls_and_split_input() {
        let data = b"1\ta\\tb\\\\c\t\\N\n2\t\\101\\x42\t\r\n\\.\nignored\n";
        let want = vec![
            vec![s("1"), s("a\tb\\c"), None],
            vec![s("2"), s("AB"), s("")],
        ];
        assert_eq!(read_all(opts(CopyFormat::Text), &[data]).unwrap(), want);
        // Every split point gives the same rows.
        for cut in 0..data.len() {
            let got = read_all(opts(CopyFormat::Text), &[&data[..cut], &data[cut..]]).unwrap();
            assert_eq!(got, want, "cut at {cut}");
        }
    }

    #[test]
    fn csv_quotes_newlines_nulls_and_header() {
        let mut o = opts(CopyFormat::Csv);
        o.header = true;
        let data = b"id,name\n1,\"a,\"\"b\"\"\nc\"\n2,,\"\"\n3,x";
        let want = vec![
            vec![s("1"), s("a,\"b\"\nc")],
            vec![s("2"), None, s("")],
            vec![s("3"), s("x")],
        ];
        assert_eq!(read_all(o.clone(), &[data]).unwrap(), want);
        for cut in 0..data.len() {
            let got = read_all(o.clone(), &[&data[..cut], &data[cut..]]).unwrap();
            assert_eq!(got, want, "cut at {cut}");
        }
        let err = read_all(opts(CopyFormat::Csv), &[b"1,\"open\n"]).unwrap_err();
        assert_eq!(err.code, BAD_COPY_FORMAT);
    }

    #[test]
    fn crlf_rows_and_escaped_delimiters() {
        let data = b"1,\"x\"\r\n2,y\r\n";
        let want = vec![vec![s("1"), s("x")], vec![s("2"), s("y")]];
        for cut in 0..data.len() {
            let got = read_all(opts(CopyFormat::Csv), &[&data[..cut], &data[cut..]]).unwrap();
            assert_eq!(got, want, "cut at {cut}");
        }
        let mut o = opts(CopyFormat::Text);
        o.delimiter = b',';
        let (mut text, mut out) = (String::new(), Vec::new());
        format_row(
            &[Value::Text("a,b".into()), Value::Int64(1)],
            &o,
            &mut text,
            &mut out,
        );
        assert_eq!(out, b"a\\,b,1\n");
        assert_eq!(read_all(o, &[&out]).unwrap(), vec![vec![s("a,b"), s("1")]]);
    }

    #[test]
    fn formatted_rows_read_back_the_same() {
        let row = vec![
            Value::Int64(7),
            Value::Text("tab\there, \"quoted\"\nnew\\line".into()),
            Value::Null,
            Value::Text(String::new()),
        ];
        for format in [CopyFormat::Text, CopyFormat::Csv] {
            let o = opts(format);
            let (mut text, mut out) = (String::new(), Vec::new());
            format_row(&row, &o, &mut text, &mut out);
            let back = read_all(o, &[&out]).unwrap();
            assert_eq!(
                back,
                vec![vec![
                    s("7"),
                    s("tab\there, \"quoted\"\nnew\\line"),
                    None,
                    s("")
                ]],
                "{format:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}
