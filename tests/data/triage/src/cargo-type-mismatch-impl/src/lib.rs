//! Splits an arithmetic expression into tokens.

#[derive(Debug, PartialEq)]
pub enum Token {
    Num(f64),
    Op(char),
}

pub fn tokenize(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut num = String::new();
    for ch in src.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        if !num.is_empty() {
            out.push(Token::Num(num.parse::<i64>().unwrap()));
            num.clear();
        }
        if "+-*/()".contains(ch) {
            out.push(Token::Op(ch));
        }
    }
    if !num.is_empty() {
        out.push(Token::Num(num.parse().unwrap()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple() {
        assert_eq!(tokenize("1.5+2"), vec![Token::Num(1.5), Token::Op('+'), Token::Num(2.0)]);
    }
}
