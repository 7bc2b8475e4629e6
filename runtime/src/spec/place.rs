//! Places in the agent file, written as errors name them (`nodes[3]`, `nodes[3].run.value`),
//! made without the formatting machinery: every node's checks and compilation make a few,
//! and only a file with a mistake ever reads one.

/// `list[index]`.
pub fn item(list: &str, index: usize) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = index;
    loop {
        start -= 1;
        // `rest % 10` is a single digit.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut place = String::with_capacity(list.len() + 2 + digits.len() - start);
    place.push_str(list);
    place.push('[');
    // ASCII digits only.
    place.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
    place.push(']');
    place
}

/// `at.key`.
pub fn under(at: &str, key: &str) -> String {
    [at, ".", key].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_read_as_formatted_ones() {
        for index in [0, 7, 10, 99, 2001, usize::MAX] {
            assert_eq!(item("nodes", index), format!("nodes[{index}]"));
        }
        assert_eq!(under("nodes[3]", "run.value"), "nodes[3].run.value");
        assert_eq!(under(&item("edges", 12), "to"), "edges[12].to");
    }
}
