use ticks::Ticks;

#[test]
fn keeps_only_capacity() {
    let mut t = Ticks::new(2);
    for p in [1.0, 2.0, 3.0] {
        t.push_tick(p);
    }
    assert_eq!(t.len(), 2);
    assert_eq!(t.latest(), Some(3.0));
}
