//! Schema migrations, applied in order.

pub struct Migration {
    pub version: u32,
    pub sql: &'static str,
}

pub fn pending(applied: u32, all: &[Migration]) -> Vec<u32> {
    all.iter().filter(|m| m.version >= applied).map(|m| m.version).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Migration; 3] = [
        Migration { version: 1, sql: "create table a (id int)" },
        Migration { version: 2, sql: "alter table a add b int" },
        Migration { version: 3, sql: "create index a_b on a (b)" },
    ];

    #[test]
    fn pending_after_first() -> Result<(), String> {
        if pending(1, &ALL) != vec![2, 3] {
            return Err("check failed".into());
        }
        Ok(())
    }
}
