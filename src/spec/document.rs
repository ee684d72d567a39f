//! Source text (YAML or JSON) to a JSON value, with a way back from any field to its line and
//! column, and limits that keep hostile input (alias bombs, deep nesting, huge files) harmless.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::path::{FieldPath, Seg};

/// A position in a source file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl Pos {
    /// The start of a file.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_marker(line: usize, col0: usize) -> Pos {
        Pos { line: u32::try_from(line.max(1)).unwrap_or(u32::MAX), column: u32::try_from(col0 + 1).unwrap_or(u32::MAX) }
    }

    /// The position of byte `offset` in `text` (clamped to the text).
    pub fn of_offset(text: &str, offset: usize) -> Pos {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos::from_marker(line, before[line_start..].chars().count())
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// The syntax a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (the core schema).
    Yaml,
    /// JSON (RFC 8259), strict: no comments, no trailing commas.
    Json,
}

impl Format {
    /// `.json` files are JSON; everything else is read as YAML.
    pub fn from_path(path: &str) -> Format {
        if path.rsplit('.').next().is_some_and(|ext| ext.eq_ignore_ascii_case("json")) { Format::Json } else { Format::Yaml }
    }
}

/// Limits on what a document may cost to read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file read at all.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most values a document may hold once aliases are expanded.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 128 matches serde_json's own recursion limit, so both formats agree.
        Limits { max_bytes: 8 << 20, max_depth: 128, max_nodes: 1_000_000 }
    }
}

/// Why a file could not be read as a document at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where it went wrong.
    pub pos: Pos,
    /// The field path, where the error concerns one (duplicate keys).
    pub path: Option<FieldPath>,
    /// What went wrong, lowercase.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl SyntaxError {
    fn at(pos: Pos, message: impl Into<String>) -> SyntaxError {
        SyntaxError { pos, path: None, message: message.into(), help: None }
    }

    fn help(mut self, help: impl Into<String>) -> SyntaxError {
        self.help = Some(help.into());
        self
    }
}

/// A parsed document: its value, and its text for finding positions again.
///
/// Positions are only needed for diagnostics, so they are worked out on first use (by
/// parsing the text once more) rather than recorded on the hot path.
#[derive(Debug)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    text: String,
    format: Format,
    limits: Limits,
    positions: OnceLock<PosNode>,
}

impl Document {
    /// Parses `bytes` as `format` within `limits`. Every duplicate key is reported, not only
    /// the first.
    pub fn parse(bytes: &[u8], format: Format, limits: &Limits) -> Result<Document, Vec<SyntaxError>> {
        let text = decode(bytes, limits).map_err(|e| vec![e])?;
        let value = match format {
            Format::Json => parse_json(text)?,
            Format::Yaml => parse_yaml(text, limits, false)?.0,
        };
        Ok(Document { value, text: text.to_owned(), format, limits: *limits, positions: OnceLock::new() })
    }

    fn positions(&self) -> &PosNode {
        self.positions.get_or_init(|| {
            let tree = match self.format {
                Format::Yaml => parse_yaml(&self.text, &self.limits, true).ok().and_then(|(_, tree)| tree),
                Format::Json => json_positions(&self.text).map(|(tree, _)| tree),
            };
            tree.unwrap_or_else(|| PosNode::leaf(Pos::START))
        })
    }

    /// The position of the value at `path`, or of its deepest ancestor that exists.
    pub fn locate(&self, path: &FieldPath) -> Pos {
        self.positions().locate(path.segs())
    }

    /// The position of the key of the entry at `path` (its last segment is the key), falling
    /// back to [`Document::locate`].
    pub fn locate_key(&self, path: &FieldPath) -> Pos {
        self.positions().locate_key(path.segs())
    }
}

fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, SyntaxError> {
    if bytes.len() > limits.max_bytes {
        return Err(SyntaxError::at(
            Pos::START,
            format!("file is {} bytes, more than the {} bytes a plan file may have", bytes.len(), limits.max_bytes),
        )
        .help("split the plan into several files, one workflow each"));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        SyntaxError::at(Pos::of_offset(valid, valid.len()), format!("invalid UTF-8 (byte 0x{:02x})", bytes[e.valid_up_to()]))
            .help("save the file as UTF-8")
    })?;
    if text.trim().is_empty() {
        return Err(SyntaxError::at(Pos::START, "file is empty").help("a plan needs at least `todo_list_id`, `title` and `tasks`"));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// YAML

/// Positions of a value and, for collections, of its children.
#[derive(Debug, Clone)]
struct PosNode {
    pos: Pos,
    kids: Kids,
}

#[derive(Debug, Clone)]
enum Kids {
    Leaf,
    Seq(Vec<PosNode>),
    /// Key, the key's position, the value's positions.
    Map(Vec<(String, Pos, PosNode)>),
}

impl PosNode {
    fn leaf(pos: Pos) -> PosNode {
        PosNode { pos, kids: Kids::Leaf }
    }

    fn child(&self, seg: &Seg) -> Option<(Pos, &PosNode)> {
        match (&self.kids, seg) {
            (Kids::Seq(items), Seg::Index(i)) => items.get(*i).map(|n| (n.pos, n)),
            (Kids::Map(entries), Seg::Key(k)) => entries.iter().find(|(key, _, _)| key == k).map(|(_, kp, n)| (*kp, n)),
            _ => None,
        }
    }

    fn locate(&self, segs: &[Seg]) -> Pos {
        let mut node = self;
        for seg in segs {
            match node.child(seg) {
                Some((_, next)) => node = next,
                None => break,
            }
        }
        node.pos
    }

    fn locate_key(&self, segs: &[Seg]) -> Pos {
        let Some((last, parents)) = segs.split_last() else { return self.pos };
        let mut node = self;
        for seg in parents {
            match node.child(seg) {
                Some((_, next)) => node = next,
                None => return node.pos,
            }
        }
        node.child(last).map_or(node.pos, |(key_pos, _)| key_pos)
    }
}

enum Frame {
    Seq { anchor: usize, pos: Pos, values: Vec<Value>, nodes: Vec<PosNode>, count: usize },
    Map { anchor: usize, pos: Pos, map: Map<String, Value>, nodes: Vec<(String, Pos, PosNode)>, key: Option<(String, Pos)>, count: usize },
}

/// Builds a value from parser events. With `track`, it also records positions and every
/// duplicate key; without, it only notes that there was one (the fast path).
struct YamlBuilder<'l> {
    limits: &'l Limits,
    track: bool,
    saw_duplicate: bool,
    stack: Vec<Frame>,
    /// Anchored values with their node counts, for aliases.
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<(Value, PosNode)>,
    duplicates: Vec<SyntaxError>,
}

/// Parses YAML text into a value and, with `track`, its positions.
fn parse_yaml(text: &str, limits: &Limits, track: bool) -> Result<(Value, Option<PosNode>), Vec<SyntaxError>> {
    let mut builder = YamlBuilder {
        limits,
        track,
        saw_duplicate: false,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        duplicates: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| vec![scan_error(&e, limits)])?;
        let pos = Pos::from_marker(span.start.line(), span.start.col());
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(vec![
                        SyntaxError::at(pos, "more than one YAML document in the file")
                            .help("keep one plan per file; remove the `---` separator"),
                    ]);
                }
            }
            Event::StreamEnd => break,
            other => builder.event(other, pos).map_err(|e| vec![e])?,
        }
    }
    if builder.saw_duplicate && !track {
        // Parse again, recording positions, to report every duplicate where it is.
        return parse_yaml(text, limits, true);
    }
    if !builder.duplicates.is_empty() {
        return Err(builder.duplicates);
    }
    let (value, root) = builder.root.unwrap_or((Value::Null, PosNode::leaf(Pos::START)));
    Ok((value, track.then_some(root)))
}

fn scan_error(e: &ScanError, limits: &Limits) -> SyntaxError {
    let m = e.marker();
    let pos = Pos::from_marker(m.line(), m.col());
    if e.info() == "recursion limit exceeded" {
        // The scanner's own flow-nesting limit can trip before ours sees the events.
        return too_deep(pos, limits);
    }
    SyntaxError::at(pos, format!("invalid YAML: {}", e.info()))
}

fn too_deep(pos: Pos, limits: &Limits) -> SyntaxError {
    SyntaxError::at(pos, format!("nesting deeper than {} levels", limits.max_depth))
}

impl YamlBuilder<'_> {
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(pos, 1)?;
                let value =
                    if self.expecting_key() { Value::String(text.into_owned()) } else { resolve_scalar(text, style, tag.as_deref(), pos)? };
                if anchor != 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                self.push(value, PosNode::leaf(pos), 1)
            }
            Event::Alias(id) => {
                let (value, count) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| SyntaxError::at(pos, "alias to an anchor that is not defined before it"))?;
                self.count(pos, count)?;
                self.push(value, PosNode::leaf(pos), count)
            }
            Event::SequenceStart(_, Some(tag)) | Event::MappingStart(_, Some(tag)) if !tag.is_yaml_core_schema() => {
                Err(unsupported_tag(pos, Some(&tag)))
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq { anchor, pos, values: Vec::new(), nodes: Vec::new(), count: 1 });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map { anchor, pos, map: Map::new(), nodes: Vec::new(), key: None, count: 1 });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::DocumentEnd => Ok(()),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn count(&mut self, pos: Pos, n: usize) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(SyntaxError::at(pos, format!("document expands to more than {} values", self.limits.max_nodes))
                .help("aliases that repeat other aliases multiply the document (an alias bomb); write the values out"));
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        if self.expecting_key() {
            return Err(SyntaxError::at(pos, NON_SCALAR_KEY));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(too_deep(pos, self.limits));
        }
        self.count(pos, 1)
    }

    fn close(&mut self) -> Result<(), SyntaxError> {
        let frame = self.stack.pop().expect("the parser balances start and end events");
        let (anchor, value, node, count) = match frame {
            Frame::Seq { anchor, pos, values, nodes, count } => {
                (anchor, Value::Array(values), PosNode { pos, kids: Kids::Seq(nodes) }, count)
            }
            Frame::Map { anchor, pos, map, nodes, count, .. } => {
                (anchor, Value::Object(map), PosNode { pos, kids: Kids::Map(nodes) }, count)
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), count));
        }
        self.push(value, node, count)
    }

    fn push(&mut self, value: Value, node: PosNode, count: usize) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some((value, node));
                Ok(())
            }
            Some(Frame::Seq { values, nodes, count: total, .. }) => {
                values.push(value);
                if self.track {
                    nodes.push(node);
                }
                *total += count;
                Ok(())
            }
            Some(Frame::Map { key, map, nodes, count: total, .. }) => {
                let Some((k, key_pos)) = key.take() else {
                    return match value {
                        Value::String(k) => {
                            *key = Some((k, node.pos));
                            Ok(())
                        }
                        _ => Err(SyntaxError::at(node.pos, NON_SCALAR_KEY)),
                    };
                };
                if !self.track {
                    if map.contains_key(&k) {
                        self.saw_duplicate = true;
                    } else {
                        map.insert(k, value);
                        *total += count;
                    }
                    return Ok(());
                }
                let first = nodes.iter().find(|(existing, _, _)| *existing == k).map(|(_, p, _)| p.line);
                if let Some(first) = first {
                    let mut path = self.path();
                    path.push(Seg::Key(k.clone()));
                    self.duplicates.push(SyntaxError {
                        pos: key_pos,
                        path: Some(path),
                        message: format!("duplicate key `{k}` (first defined at line {first})"),
                        help: Some("remove one of the two entries".into()),
                    });
                    return Ok(());
                }
                map.insert(k.clone(), value);
                nodes.push((k, key_pos, node));
                *total += count;
                Ok(())
            }
        }
    }

    /// The field path of the collection on top of the stack.
    fn path(&self) -> FieldPath {
        let mut path = FieldPath::root();
        for (depth, frame) in self.stack.iter().enumerate() {
            if depth + 1 == self.stack.len() {
                break;
            }
            match frame {
                Frame::Seq { values, .. } => path.push(Seg::Index(values.len())),
                Frame::Map { key, .. } => {
                    if let Some((k, _)) = key {
                        path.push(Seg::Key(k.clone()));
                    }
                }
            }
        }
        path
    }
}

const NON_SCALAR_KEY: &str = "a mapping key must be a plain value, not a sequence or mapping";

fn unsupported_tag(pos: Pos, tag: Option<&Tag>) -> SyntaxError {
    let shown = tag.map_or_else(String::new, |t| {
        let handle = if t.handle == "tag:yaml.org,2002:" { "!!" } else { t.handle.as_str() };
        format!("{handle}{}", t.suffix)
    });
    SyntaxError::at(pos, format!("unsupported YAML tag `{shown}`")).help("plans use plain YAML values; remove the tag")
}

/// Resolves a scalar by the YAML 1.2 core schema (so `yes` and `on` stay strings).
fn resolve_scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>, pos: Pos) -> Result<Value, SyntaxError> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err(unsupported_tag(pos, Some(tag)));
        }
        let typed = match tag.suffix.as_str() {
            "str" => Some(Value::String(text.to_string())),
            "null" => core_null(&text).then_some(Value::Null),
            "bool" => core_bool(&text).map(Value::Bool),
            "int" => core_int(&text).map(Value::Number),
            "float" => core_float(&text).or_else(|| core_int(&text)).map(Value::Number),
            _ => return Err(unsupported_tag(pos, Some(tag))),
        };
        return typed.ok_or_else(|| SyntaxError::at(pos, format!("`{text}` is not a valid !!{}", tag.suffix)));
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.into_owned()));
    }
    if core_null(&text) {
        return Ok(Value::Null);
    }
    if let Some(b) = core_bool(&text) {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = core_int(&text).or_else(|| core_float(&text)) {
        return Ok(Value::Number(n));
    }
    Ok(Value::String(text.into_owned()))
}

fn core_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn core_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn core_int(s: &str) -> Option<Number> {
    let (digits, radix) = if let Some(rest) = s.strip_prefix("0x") {
        (rest, 16)
    } else if let Some(rest) = s.strip_prefix("0o") {
        (rest, 8)
    } else {
        let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return s.parse::<i64>().map(Number::from).ok().or_else(|| s.trim_start_matches('+').parse::<u64>().ok().map(Number::from));
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().map(Number::from)
}

fn core_float(s: &str) -> Option<Number> {
    // Only what the core schema's float pattern allows; non-finite values have no JSON form
    // and stay strings.
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let valid = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().any(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64)
}

// ---------------------------------------------------------------------------------------------
// JSON

fn parse_json(text: &str) -> Result<Value, Vec<SyntaxError>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = StrictValue::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(StrictValue(value)) => Ok(value),
        Err(e) => {
            let pos = Pos { line: e.line().try_into().unwrap_or(u32::MAX), column: e.column().max(1).try_into().unwrap_or(u32::MAX) };
            let full = e.to_string();
            if full.starts_with(DUPLICATE) {
                let duplicates = json_positions(text).map(|(_, d)| d).unwrap_or_default();
                return Err(if duplicates.is_empty() { vec![SyntaxError::at(pos, DUPLICATE)] } else { duplicates });
            }
            if full.starts_with("recursion limit exceeded") {
                return Err(vec![too_deep(pos, &Limits::default())]);
            }
            let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
            Err(vec![SyntaxError::at(pos, format!("invalid JSON: {message}"))])
        }
    }
}

const DUPLICATE: &str = "duplicate key";

/// A JSON value that refuses duplicate keys (serde_json's own `Value` keeps the last).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(StrictValue(v)) = seq.next_element()? {
            values.push(v);
        }
        Ok(Value::Array(values))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE} `{key}`")));
            }
            let StrictValue(v) = access.next_value()?;
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }
}

fn strict_json_options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// The positions of a JSON text that serde_json already read as well-formed, and every
/// duplicate key in it. Only runs for diagnostics, so speed does not matter here.
/// The deepest nesting of `[` and `{` in a JSON text, strings skipped.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn json_positions(text: &str) -> Option<(PosNode, Vec<SyntaxError>)> {
    use jsonc_parser::ast::Value as Ast;
    use jsonc_parser::common::Ranged;

    fn build(text: &str, value: &Ast<'_>, path: &FieldPath, duplicates: &mut Vec<SyntaxError>) -> PosNode {
        let pos = Pos::of_offset(text, value.range().start);
        let kids = match value {
            Ast::Object(obj) => {
                let mut entries: Vec<(String, Pos, PosNode)> = Vec::with_capacity(obj.properties.len());
                for prop in &obj.properties {
                    let name = prop.name.as_str();
                    let key_pos = Pos::of_offset(text, prop.range.start);
                    let child = path.key(name);
                    if let Some((_, first, _)) = entries.iter().find(|(k, _, _)| k == name) {
                        duplicates.push(SyntaxError {
                            pos: key_pos,
                            path: Some(child),
                            message: format!("duplicate key `{name}` (first defined at line {})", first.line),
                            help: Some("remove one of the two entries".into()),
                        });
                        continue;
                    }
                    let node = build(text, &prop.value, &child, duplicates);
                    entries.push((name.to_owned(), key_pos, node));
                }
                Kids::Map(entries)
            }
            Ast::Array(arr) => {
                Kids::Seq(arr.elements.iter().enumerate().map(|(i, v)| build(text, v, &path.index(i), duplicates)).collect())
            }
            _ => Kids::Leaf,
        };
        PosNode { pos, kids }
    }

    // The AST parser recurses: keep hostile nesting away from it.
    if json_depth(text) > Limits::default().max_depth {
        return None;
    }
    let root = jsonc_parser::parse_to_ast(text, &Default::default(), &strict_json_options()).ok()?.value?;
    let mut duplicates = Vec::new();
    let tree = build(text, &root, &FieldPath::root(), &mut duplicates);
    duplicates.sort_by_key(|e| e.pos);
    Some((tree, duplicates))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Document, Vec<SyntaxError>> {
        Document::parse(text.as_bytes(), Format::Yaml, &Limits::default())
    }

    fn json(text: &str) -> Result<Document, Vec<SyntaxError>> {
        Document::parse(text.as_bytes(), Format::Json, &Limits::default())
    }

    fn path(s: &str) -> FieldPath {
        FieldPath::parse(s)
    }

    #[test]
    fn yaml_scalars_follow_the_core_schema() {
        let doc = yaml("a: yes\nb: true\nc: 3\nd: 2.5\ne: ~\nf: '3'\ng: 0x1f\nh: .inf\n").unwrap();
        assert_eq!(doc.value, serde_json::json!({"a": "yes", "b": true, "c": 3, "d": 2.5, "e": null, "f": "3", "g": 31, "h": ".inf"}));
    }

    #[test]
    fn yaml_positions_point_at_values_and_keys() {
        let doc = yaml("tasks:\n  - id: a\n    dependencies:\n      - b\n      - c\n").unwrap();
        assert_eq!(doc.locate(&path("tasks[0].dependencies[1]")), Pos { line: 5, column: 9 });
        assert_eq!(doc.locate_key(&path("tasks[0].dependencies")), Pos { line: 3, column: 5 });
        // A missing field falls back to its nearest ancestor.
        assert_eq!(doc.locate(&path("tasks[0].nope")), Pos { line: 2, column: 5 });
    }

    #[test]
    fn json_positions_point_at_values_and_keys() {
        let doc = json("{\n  \"tasks\": [\n    {\"id\": \"a\", \"dependencies\": [\"b\"]}\n  ]\n}").unwrap();
        assert_eq!(doc.locate(&path("tasks[0].dependencies[0]")), Pos { line: 3, column: 34 });
        assert_eq!(doc.locate_key(&path("tasks[0].id")), Pos { line: 3, column: 6 });
    }

    #[test]
    fn every_duplicate_key_is_reported() {
        let errs = yaml("a: 1\nb: 2\na: 3\nc:\n  x: 1\n  x: 2\n").unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].pos, Pos { line: 3, column: 1 });
        assert!(errs[0].message.contains("first defined at line 1"), "{}", errs[0].message);
        assert_eq!(errs[1].path.as_ref().map(ToString::to_string).as_deref(), Some("c.x"));

        let errs = json("{\"a\": 1, \"a\": 2, \"b\": {\"c\": 1, \"c\": 1}}").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].pos, Pos { line: 1, column: 10 });
    }

    #[test]
    fn alias_bombs_stop_at_the_node_limit() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"]) {
            text.push_str(&format!(
                "{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let errs = yaml(&text).unwrap_err();
        assert!(errs[0].message.contains("expands to more than"), "{}", errs[0].message);
    }

    #[test]
    fn deep_nesting_is_an_error_in_both_formats() {
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        let errs = yaml(&deep).unwrap_err();
        assert!(errs[0].message.contains("nesting deeper"), "{}", errs[0].message);
        let errs = json(&deep).unwrap_err();
        assert!(errs[0].message.contains("nesting deeper"), "{}", errs[0].message);
        let block: String = (0..1000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let errs = yaml(&block).unwrap_err();
        assert!(errs[0].message.contains("nesting deeper"), "{}", errs[0].message);
    }

    #[test]
    fn bad_bytes_and_empty_files_say_where() {
        let errs = Document::parse(b"a: 1\nb: \xff\n", Format::Yaml, &Limits::default()).unwrap_err();
        assert_eq!(errs[0].pos, Pos { line: 2, column: 4 });
        assert!(errs[0].message.contains("UTF-8"));
        let errs = yaml("  \n").unwrap_err();
        assert!(errs[0].message.contains("empty"));
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let errs = yaml("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(errs[0].message.starts_with("invalid YAML"), "{}", errs[0].message);
        assert!(errs[0].pos.line >= 1);
        let errs = json("{\"a\": 1,\n \"b\": }").unwrap_err();
        assert_eq!(errs[0].pos.line, 2);
        assert!(errs[0].message.starts_with("invalid JSON"));
    }

    #[test]
    fn a_duplicate_before_deep_nesting_is_reported_without_recursing() {
        let text = format!("{{\"a\": 1, \"a\": 2, \"b\": {}{}}}", "[".repeat(200_000), "]".repeat(200_000));
        let errs = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || json(&text).unwrap_err()).unwrap().join().unwrap();
        assert!(errs[0].message.contains("duplicate key"), "{errs:?}");
        assert_eq!(json_depth(r#"{"a": "[[[", "b": [{"c": "\"]"}]}"#), 3);
    }

    #[test]
    fn several_documents_are_refused() {
        let errs = yaml("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(errs[0].pos.line, 2);
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        assert_eq!(Pos::of_offset("é\nxé y", "é\nxé ".len()), Pos { line: 2, column: 4 });
    }
}
