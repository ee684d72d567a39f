//! Writes report snapshots under target/reports.
use std::fs;
use std::path::Path;

pub const DIR: &str = "target/reports";

pub fn write_report(name: &str, body: &str) -> std::io::Result<()> {
    fs::create_dir_all(DIR)?;
    fs::write(Path::new(DIR).join(name), body)
}

pub fn list_reports() -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(DIR)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_sorted() {
        let names = list_reports().expect("list reports");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn b_write_then_list() {
        write_report("daily.txt", "ok").unwrap();
        assert!(list_reports().unwrap().contains(&"daily.txt".to_string()));
    }
}
