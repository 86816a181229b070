use super::*;

fn cached(subject: &str) -> Cached {
    Cached {
        claims_json: Zeroizing::new(format!(r#"{{"sub":"{subject}","exp":2000}}"#)),
        key_id: "k1".to_owned(),
        signing_key_id: Some("issuer".to_owned()),
        info: TokenInfo {
            subject: Some(subject.to_owned()),
            ..TokenInfo::default()
        },
    }
}

fn subject_of(cache: &ClaimsCache, token: &str, now: i64) -> Option<String> {
    cache
        .get(&ClaimsCache::digest(token), now)
        .and_then(|hit| hit.info.subject.clone())
}

#[test]
fn hit_returns_the_stored_claims_until_exp() {
    let cache = ClaimsCache::new(8);
    cache.insert(cache.generation(), ClaimsCache::digest("t1"), 2000, cached("alice"));
    assert_eq!(subject_of(&cache, "t1", 1999).as_deref(), Some("alice"));
    assert_eq!(subject_of(&cache, "t2", 1999), None);
    assert_eq!(subject_of(&cache, "t1", 2000), None, "served at exp");
    assert!(cache.is_empty(), "an expired entry stays after its lookup");
    assert_eq!(cache.hits_and_misses(), (1, 2));
}

#[test]
fn oldest_entries_leave_first_and_the_bound_holds() {
    let cache = ClaimsCache::new(3);
    for n in 0..10 {
        cache.insert(
            cache.generation(),
            ClaimsCache::digest(&format!("t{n}")),
            2000,
            cached(&n.to_string()),
        );
        assert!(cache.len() <= 3);
    }
    let present: Vec<bool> = (0..10)
        .map(|n| subject_of(&cache, &format!("t{n}"), 0).is_some())
        .collect();
    assert_eq!(
        present,
        [false, false, false, false, false, false, false, true, true, true]
    );
}

#[test]
fn order_stays_bounded_after_removals() {
    let cache = ClaimsCache::new(4);
    for n in 0..1000 {
        let token = format!("t{n}");
        cache.insert(cache.generation(), ClaimsCache::digest(&token), 10, cached("x"));
        // Expire it at once, which removes the entry but not its order slot.
        assert!(subject_of(&cache, &token, 10).is_none());
    }
    let inner = cache.inner.lock().expect("lock");
    assert!(inner.order.len() <= 8, "order holds {} slots", inner.order.len());
}

#[test]
fn clear_empties_and_refuses_inserts_from_before_it() {
    let cache = ClaimsCache::new(8);
    let before = cache.generation();
    cache.insert(before, ClaimsCache::digest("t1"), 2000, cached("alice"));
    cache.clear();
    assert!(cache.is_empty());
    cache.insert(before, ClaimsCache::digest("t2"), 2000, cached("bob"));
    assert!(cache.is_empty(), "a result from before the clear was stored");
    cache.insert(cache.generation(), ClaimsCache::digest("t2"), 2000, cached("bob"));
    assert_eq!(subject_of(&cache, "t2", 0).as_deref(), Some("bob"));
}

#[test]
fn zero_entries_turns_the_cache_off() {
    let cache = ClaimsCache::new(0);
    cache.insert(cache.generation(), ClaimsCache::digest("t1"), 2000, cached("alice"));
    assert!(cache.is_empty());
    assert_eq!(subject_of(&cache, "t1", 0), None);
}
