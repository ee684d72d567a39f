/// Simple returns between consecutive prices.
pub fn returns(prices: &[f32]) -> Vec<f32> {
    prices.windows(2).map(|w| w[1] / w[0] - 1.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of<T>(_: &T) -> &'static str {
        std::any::type_name::<T>()
    }

    #[test]
    fn the_return_type_is_the_contracts() {
        let r = returns(&[100.0, 110.0]);
        assert_eq!(type_of(&r), type_of(&Vec::<f64>::new()), "returns() must return Vec<f64>, the contract's return type");
    }

    #[test]
    fn one_return_per_step() {
        assert_eq!(returns(&[1.0, 2.0, 4.0]).len(), 2);
    }
}
