use super::*;

#[derive(Debug)]
struct Fixed(f64);
impl Entropy for Fixed {
    fn fraction(&self) -> f64 {
        self.0
    }
    fn token(&self) -> String {
        "t".into()
    }
}

#[test]
fn backoff_doubles_from_half_a_second_up_to_a_minute() {
    let b = PublishConfig::default().retry;
    let ceilings: Vec<_> = (1..=9).map(|n| b.ceiling(n).as_millis()).collect();
    assert_eq!(
        ceilings,
        [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
    );
    assert_eq!(b.delay(3, &Fixed(0.5)), Duration::from_millis(1000));
    assert_eq!(b.delay(3, &Fixed(0.0)), Duration::ZERO, "full jitter");
    assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(60));
}
