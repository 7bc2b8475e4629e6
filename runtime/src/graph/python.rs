//! Python's built-ins that TEA's expressions use, for minijinja: `str`, `int`, `float`, `bool`,
//! `min`, `max`, `abs`, `round`, `sorted`, `sum`, and `'%d' % x` formatting (rewritten to a
//! `pyformat(...)` call before compiling, since minijinja's `%` is only the remainder).

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

/// Adds the built-ins to `env`.
pub fn install(env: &mut Environment<'static>) {
    env.add_function("str", str);
    env.add_function("int", int);
    env.add_function("float", float);
    env.add_function("bool", |v: Value| v.is_true());
    env.add_function("min", |args: Rest<Value>| {
        extreme(args, "min", std::cmp::Ordering::Less)
    });
    env.add_function("max", |args: Rest<Value>| {
        extreme(args, "max", std::cmp::Ordering::Greater)
    });
    env.add_function("abs", abs);
    env.add_function("round", round);
    env.add_function("sorted", sorted);
    env.add_function("sum", sum);
    env.add_function("pyformat", pyformat);
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Python's `str()`: `None`, `True`, `1.5`, text as it is.
fn str(value: Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        _ => value.to_string(),
    }
}

fn number(value: &Value, what: &str) -> Result<f64, Error> {
    match value.kind() {
        ValueKind::Bool => Ok(f64::from(u8::from(value.is_true()))),
        ValueKind::Number => f64::try_from(value.clone())
            .map_err(|_| invalid(format!("{what}() of a number out of range ({value})"))),
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            text.parse::<f64>()
                .map_err(|_| invalid(format!("{what}() of text that is not a number: {text:?}")))
        }
        other => Err(invalid(format!(
            "{what}() of a value that is not a number ({other})"
        ))),
    }
}

/// Python's `int()`: truncates a number, parses text written as a whole number.
fn int(value: Value) -> Result<Value, Error> {
    if let Some(text) = value.as_str() {
        let text = text.trim();
        return text.parse::<i64>().map(Value::from).map_err(|_| {
            invalid(format!(
                "int() of text that is not a whole number: {text:?}"
            ))
        });
    }
    if let Some(whole) = value.as_i64() {
        return Ok(Value::from(whole));
    }
    let f = number(&value, "int")?;
    Ok(Value::from(f.trunc() as i64))
}

fn float(value: Value) -> Result<f64, Error> {
    number(&value, "float")
}

fn abs(value: Value) -> Result<Value, Error> {
    match value.as_i64() {
        Some(whole) => Ok(Value::from(whole.abs())),
        None => Ok(Value::from(number(&value, "abs")?.abs())),
    }
}

/// Python's `round()`: to a whole number without `ndigits`, halves to even.
fn round(value: Value, ndigits: Option<i32>) -> Result<Value, Error> {
    let x = number(&value, "round")?;
    Ok(match ndigits {
        None => Value::from(x.round_ties_even() as i64),
        Some(n) => {
            let scale = 10f64.powi(n);
            Value::from((x * scale).round_ties_even() / scale)
        }
    })
}

/// The items of `min(a, b, ...)` or `min(list)`.
fn items(args: Rest<Value>, what: &str) -> Result<Vec<Value>, Error> {
    match args.0.as_slice() {
        [] => Err(invalid(format!("{what}() needs at least one value"))),
        [one] => Ok(one
            .try_iter()
            .map_err(|_| invalid(format!("{what}() of one value that is not a list")))?
            .collect()),
        more => Ok(more.to_vec()),
    }
}

fn extreme(args: Rest<Value>, what: &str, wanted: std::cmp::Ordering) -> Result<Value, Error> {
    let items = items(args, what)?;
    items
        .into_iter()
        .reduce(|best, v| if v.cmp(&best) == wanted { v } else { best })
        .ok_or_else(|| invalid(format!("{what}() of an empty list")))
}

fn sorted(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let reverse: Option<bool> = kwargs.get("reverse")?;
    kwargs.assert_all_used()?;
    let mut items: Vec<Value> = value
        .try_iter()
        .map_err(|_| invalid("sorted() of a value that is not a list".into()))?
        .collect();
    items.sort();
    if reverse.unwrap_or(false) {
        items.reverse();
    }
    Ok(Value::from(items))
}

fn sum(value: Value) -> Result<Value, Error> {
    let mut whole: i64 = 0;
    let mut real: Option<f64> = None;
    for item in value
        .try_iter()
        .map_err(|_| invalid("sum() of a value that is not a list".into()))?
    {
        match (item.as_i64(), real) {
            (Some(n), None) => whole = whole.saturating_add(n),
            _ => real = Some(real.unwrap_or(whole as f64) + number(&item, "sum")?),
        }
    }
    Ok(real.map_or(Value::from(whole), Value::from))
}

/// `'%s and %d' % (a, b)`: Python's printf-style formatting (`s`, `r`, `d`, `i`, `f`, `e`,
/// `g`, `x`, `o`, `%`, with flags, width and precision).
fn pyformat(format: String, args: Value) -> Result<String, Error> {
    let args: Vec<Value> = if args.kind() == ValueKind::Seq {
        args.try_iter()?.collect()
    } else {
        vec![args]
    };
    let mut args = args.into_iter();
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-+ 0#".contains(**f)) {
            flags.push(f);
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            precision = Some(digits.parse::<usize>().unwrap_or(0));
        }
        let Some(conversion) = chars.next() else {
            return Err(invalid("incomplete format: a `%` at the end".into()));
        };
        if conversion == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .next()
            .ok_or_else(|| invalid("not enough arguments for format string".into()))?;
        let mut text = match conversion {
            's' => str(arg),
            'r' => match arg.as_str() {
                Some(s) => format!("'{s}'"),
                None => str(arg),
            },
            'd' | 'i' => {
                let n = int(arg)?;
                let n = n.as_i64().unwrap_or_default();
                signed(n.to_string(), n < 0, &flags)
            }
            'f' | 'F' => {
                let x = number(&arg, "format")?;
                signed(
                    format!("{:.*}", precision.unwrap_or(6), x.abs()),
                    x < 0.0,
                    &flags,
                )
            }
            'e' | 'E' => {
                let x = number(&arg, "format")?;
                let text = format!("{:.*e}", precision.unwrap_or(6), x.abs());
                signed(python_exponent(&text), x < 0.0, &flags)
            }
            'g' | 'G' => {
                let x = number(&arg, "format")?;
                signed(Value::from(x.abs()).to_string(), x < 0.0, &flags)
            }
            'x' | 'X' | 'o' => {
                let n = int(arg)?.as_i64().unwrap_or_default();
                let digits = match conversion {
                    'x' => format!("{:x}", n.unsigned_abs()),
                    'X' => format!("{:X}", n.unsigned_abs()),
                    _ => format!("{:o}", n.unsigned_abs()),
                };
                signed(digits, n < 0, &flags)
            }
            other => {
                return Err(invalid(format!(
                    "unsupported format character `{other}` in `{format}`"
                )));
            }
        };
        if conversion == 's'
            && let Some(p) = precision
        {
            text = text.chars().take(p).collect();
        }
        let width: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len < width {
            let pad = width - len;
            if flags.contains('-') {
                text.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && conversion != 's' {
                let sign = text.starts_with(['-', '+', ' ']);
                let (head, tail) = text.split_at(usize::from(sign));
                text = format!("{head}{}{tail}", "0".repeat(pad));
            } else {
                text = format!("{}{text}", " ".repeat(pad));
            }
        }
        out.push_str(&text);
    }
    if args.next().is_some() {
        return Err(invalid(
            "not all arguments converted during string formatting".into(),
        ));
    }
    Ok(out)
}

fn signed(digits: String, negative: bool, flags: &str) -> String {
    if negative {
        format!("-{digits}")
    } else if flags.contains('+') {
        format!("+{digits}")
    } else if flags.contains(' ') {
        format!(" {digits}")
    } else {
        digits
    }
}

/// Rust writes `1.5e3`; Python writes `1.5e+03`.
fn python_exponent(text: &str) -> String {
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text.to_string(),
    }
}

/// Rewrites `'...' % OPERAND` in an expression to `pyformat('...', OPERAND)`. The operand is a
/// parenthesised group (a tuple gives several arguments) or a name with its `.attr`, `[key]`
/// and `(call)` parts.
pub fn rewrite_percent(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\'' && c != '"' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(end) = string_end(&chars, i) else {
            out.extend(&chars[i..]);
            break;
        };
        let literal: String = chars[i..=end].iter().collect();
        let mut j = skip_spaces(&chars, end + 1);
        if chars.get(j) == Some(&'%') && !matches!(chars.get(j + 1), Some('}' | '=')) {
            j = skip_spaces(&chars, j + 1);
            if let Some(operand_end) = operand_end(&chars, j) {
                let operand: String = chars[j..operand_end].iter().collect();
                let operand = rewrite_percent(&operand);
                out.push_str(&format!("pyformat({literal}, {operand})"));
                i = operand_end;
                continue;
            }
        }
        out.push_str(&literal);
        i = end + 1;
    }
    out
}

fn skip_spaces(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// The index of the quote closing the string that starts at `start`.
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index after the bracket group opening at `start`.
fn group_end(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\'' | '"' => i = string_end(chars, i)?,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn operand_end(chars: &[char], start: usize) -> Option<usize> {
    let first = *chars.get(start)?;
    let mut i = if first == '(' || first == '[' {
        group_end(chars, start)?
    } else if first == '\'' || first == '"' {
        string_end(chars, start)? + 1
    } else if first.is_alphanumeric() || first == '_' {
        let mut i = start;
        while chars
            .get(i)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            i += 1;
        }
        i
    } else {
        return None;
    };
    loop {
        match chars.get(i) {
            Some('.')
                if chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_alphabetic() || *c == '_') =>
            {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
            }
            Some('[' | '(') => i = group_end(chars, i)?,
            _ => return Some(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_rewritten_only_after_a_string() {
        assert_eq!(
            rewrite_percent("'%d items' % state.count"),
            "pyformat('%d items', state.count)"
        );
        assert_eq!(
            rewrite_percent("\"%s-%s\" % (a, b['k']) ~ 'x'"),
            "pyformat(\"%s-%s\", (a, b['k'])) ~ 'x'"
        );
        assert_eq!(rewrite_percent("state.n % 2 == 0"), "state.n % 2 == 0");
        assert_eq!(rewrite_percent("'50%' ~ x"), "'50%' ~ x");
    }

    #[test]
    fn formats_like_python() {
        let f = |fmt: &str, args: Value| pyformat(fmt.into(), args).unwrap();
        assert_eq!(f("%d items", Value::from(3)), "3 items");
        assert_eq!(
            f(
                "%05.2f|%-4s|%x",
                Value::from(vec![
                    Value::from(4.56789),
                    Value::from("ab"),
                    Value::from(255)
                ])
            ),
            "04.57|ab  |ff"
        );
        assert_eq!(f("%s%%", Value::from(true)), "True%");
        assert_eq!(f("%.1e", Value::from(1500.0)), "1.5e+03");
        assert!(pyformat("%d %d".into(), Value::from(1)).is_err());
    }
}
