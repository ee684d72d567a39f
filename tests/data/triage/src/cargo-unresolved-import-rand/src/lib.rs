use rand::Rng;

pub fn roll() -> u8 {
    rand::thread_rng().gen_range(1..=6)
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_range() {
        let r = super::roll();
        assert!((1..=6).contains(&r));
    }
}
