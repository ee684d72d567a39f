pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    todo!()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
