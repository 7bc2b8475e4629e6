//! Splits Prolog text into its clauses, each with the line it starts on, so that each can be
//! read and run on its own and an error can name its clause. Comments become spaces; a clause
//! ends at an end token: a `.` that is not part of a symbol-character token (`=..`), followed
//! by layout, `%` or the end of the text. Quoted text (`'...'`, `"..."`, `` `...` ``) and
//! character codes (`0'c`) are kept as they are.

/// One clause: its text (without the end `.`) and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub text: String,
    pub line: usize,
}

const SYMBOL_CHARS: &str = "+-*/\\^<>=~:.?@#&$";

/// The clauses of `code`, in order; blank ones (only layout and comments) are left out.
pub fn split(code: &str) -> Vec<Clause> {
    let chars: Vec<char> = code.chars().collect();
    let mut clauses = Vec::new();
    let mut text = String::new();
    let mut line = 1;
    let mut start_line = None;
    let mut i = 0;
    let mut push = |text: &mut String, start: &mut Option<usize>| {
        if let Some(start) = start.take() {
            clauses.push(Clause {
                text: std::mem::take(text).trim().to_string(),
                line: start,
            });
        }
        text.clear();
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '%' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    line += 1;
                    text.push('\n');
                }
                i += 1;
            }
            i += 2;
            text.push(' ');
            continue;
        }
        if c == '\n' {
            line += 1;
            text.push(c);
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            text.push(c);
            i += 1;
            continue;
        }
        if start_line.is_none() {
            start_line = Some(line);
        }
        // 0'c: a character code, whose character may be a quote.
        if c == '0' && chars.get(i + 1) == Some(&'\'') && !previous_is_alnum(&chars, i) {
            text.push_str("0'");
            i += 2;
            if chars.get(i) == Some(&'\\') {
                text.push('\\');
                i += 1;
            } else if chars.get(i) == Some(&'\'') && chars.get(i + 1) == Some(&'\'') {
                text.push('\'');
                i += 1;
            }
            if let Some(&next) = chars.get(i) {
                text.push(next);
                i += 1;
            }
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            text.push(c);
            i += 1;
            while i < chars.len() {
                let q = chars[i];
                text.push(q);
                i += 1;
                if q == '\n' {
                    line += 1;
                } else if q == '\\' {
                    if let Some(&escaped) = chars.get(i) {
                        text.push(escaped);
                        if escaped == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                } else if q == c {
                    if chars.get(i) == Some(&c) {
                        text.push(c);
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '.' {
            let before_symbol = i > 0 && SYMBOL_CHARS.contains(chars[i - 1]) && !text.is_empty();
            let after = chars.get(i + 1);
            let ends = after.is_none_or(|a| a.is_whitespace() || *a == '%');
            if ends && !before_symbol {
                i += 1;
                push(&mut text, &mut start_line);
                continue;
            }
        }
        text.push(c);
        i += 1;
    }
    if !text.trim().is_empty() {
        push(&mut text, &mut start_line);
    }
    clauses
}

fn previous_is_alnum(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(code: &str) -> Vec<(String, usize)> {
        split(code).into_iter().map(|c| (c.text, c.line)).collect()
    }

    #[test]
    fn clauses_end_at_end_tokens_with_their_lines() {
        let code = "% a comment.\nparent(a, b).\nrule(X) :-\n  X =.. [f|_], Y = 'a. b',\n  Z = \"x.\" .\nstate(k, V), return(r, V)";
        assert_eq!(
            texts(code),
            vec![
                ("parent(a, b)".to_string(), 2),
                (
                    "rule(X) :-\n  X =.. [f|_], Y = 'a. b',\n  Z = \"x.\"".to_string(),
                    3
                ),
                ("state(k, V), return(r, V)".to_string(), 6),
            ]
        );
    }

    #[test]
    fn comments_and_character_codes() {
        let code = "a(0'.). /* b(1).\n */ c(0''') . d(1.5). e('it''s.').";
        assert_eq!(
            texts(code),
            vec![
                ("a(0'.)".to_string(), 1),
                ("c(0''')".to_string(), 2),
                ("d(1.5)".to_string(), 2),
                ("e('it''s.')".to_string(), 2),
            ]
        );
        assert!(split("  % only a comment\n\n").is_empty());
    }
}
