use csvline::split;

#[test]
fn plain_fields() {
    assert_eq!(split("a,b,c"), ["a", "b", "c"]);
}

#[test]
fn quoted_comma() {
    assert_eq!(split(r#"a,"b,c",d"#), ["a", "b,c", "d"]);
}

#[test]
fn trailing_empty_field() {
    assert_eq!(split("a,b,"), ["a", "b", ""]);
}

#[test]
fn escaped_quote() {
    assert_eq!(split(r#""say ""hi""",x"#), [r#"say "hi""#, "x"]);
}

#[test]
fn empty_line_is_one_empty_field() {
    assert_eq!(split(""), [""]);
}
