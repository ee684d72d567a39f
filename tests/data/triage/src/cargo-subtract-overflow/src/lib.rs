//! Page arithmetic for list endpoints.

pub struct Page {
    pub number: usize,
    pub size: usize,
}

/// Item range [start, end) of a 1-based page.
pub fn bounds(page: &Page, total: usize) -> (usize, usize) {
    let start = (page.number - 1) * page.size;
    let end = (start + page.size).min(total);
    (start, end)
}

pub fn pages(total: usize, size: usize) -> usize {
    (total + size - 1) / size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_page() {
        assert_eq!(bounds(&Page { number: 2, size: 10 }, 25), (10, 20));
    }

    #[test]
    fn page_zero_is_treated_as_first() {
        assert_eq!(bounds(&Page { number: 0, size: 10 }, 25), (0, 10));
    }

    #[test]
    fn page_count() {
        assert_eq!(pages(25, 10), 3);
    }
}
