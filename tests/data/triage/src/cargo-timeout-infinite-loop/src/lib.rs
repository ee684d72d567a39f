//! Reduces fractions for display.

pub fn gcd(mut a: i64, mut b: i64) -> i64 {
    while a != b {
        if a > b {
            a -= b;
        } else {
            b -= a;
        }
    }
    a
}

pub fn reduce(num: i64, den: i64) -> (i64, i64) {
    let g = gcd(num, den);
    (num / g, den / g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive() {
        assert_eq!(reduce(6, 8), (3, 4));
    }

    #[test]
    fn negative_numerator() {
        assert_eq!(reduce(-6, 8), (-3, 4));
    }
}
