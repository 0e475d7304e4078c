//! Unit tests of `hasher.rs`.

use super::*;
use ::argon2::password_hash::SaltString;
use ::argon2::Argon2;

#[tokio::test]
async fn hashes_are_argon2id_at_owasp_cost_and_verify() {
    let hasher = Hasher::new(1, 1, 2, 4).unwrap();
    let phc = hasher
        .hash(Password::new("Tr1cky-Lantern-Owl".into()))
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
    assert!(hasher
        .verify(
            Password::new("Tr1cky-Lantern-Owl".into()),
            Some(phc.clone())
        )
        .await
        .unwrap());
    assert!(!hasher
        .verify(Password::new("wrong".into()), Some(phc))
        .await
        .unwrap());
    assert!(!hasher
        .verify(Password::new("Tr1cky-Lantern-Owl".into()), None)
        .await
        .unwrap());
    assert!(!hasher
        .verify(Password::new("x".into()), Some("garbage".into()))
        .await
        .unwrap());
}

type Held = tokio::task::JoinHandle<Result<(), HashError>>;

/// Start a job that holds the hasher's single worker until the returned
/// barrier is passed.
async fn occupy_the_only_worker(hasher: &Hasher) -> (Arc<std::sync::Barrier>, Held) {
    let gate = Arc::new(std::sync::Barrier::new(2));
    let started = Arc::new(std::sync::Barrier::new(2));
    let held = {
        let (hasher, gate, started) = (hasher.clone(), gate.clone(), started.clone());
        tokio::spawn(async move {
            hasher
                .run(move || {
                    started.wait();
                    gate.wait();
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || started.wait())
        .await
        .unwrap();
    (gate, held)
}

#[tokio::test]
async fn hashes_nothing_can_verify_cost_a_full_verification_like_unknown_accounts() {
    let hasher = Hasher::new(1, 1, 1, 4).unwrap();
    let check = |stored: Option<&str>| {
        let (hasher, stored) = (hasher.clone(), stored.map(str::to_owned));
        async move {
            let before = hasher.dummy_verifications();
            let matched = hasher
                .verify(Password::new("Tr1cky-Lantern-Owl".into()), stored)
                .await
                .unwrap();
            assert!(!matched);
            hasher.dummy_verifications() - before
        }
    };
    // An unknown account costs one full verification, on the dummy.
    assert_eq!(check(None).await, 1);
    // So do Django's unusable passwords, an unsupported algorithm,
    // garbage, a truncated bcrypt hash and a hostile cost: without the
    // dummy each would answer in microseconds, three orders of magnitude
    // under an Argon2id verification.
    for stored in [
        "!unusable-XyZ",
        "",
        "md5$salt$0123abcd",
        "not a hash",
        "bcrypt$$2b$12$short",
        "$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_eq!(check(Some(stored)).await, 1, "{stored:?}");
    }
    // A hash that can be verified is verified itself, not the dummy.
    let own = hasher.hash(Password::new("other".into())).await.unwrap();
    assert_eq!(check(Some(&own)).await, 0);
}

/// With the only worker occupied, queue a job answering 7; returns once it is queued.
async fn fill_the_queue(hasher: &Hasher) -> tokio::task::JoinHandle<Result<i32, HashError>> {
    let waiting = {
        let hasher = hasher.clone();
        tokio::spawn(async move { hasher.run(|| 7).await })
    };
    while hasher.queue_depth() == 0 {
        tokio::task::yield_now().await;
    }
    waiting
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_answers_overloaded_after_the_admission_wait() {
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 1).unwrap();
    let (gate, held) = occupy_the_only_worker(&hasher).await;
    let waiting = fill_the_queue(&hasher).await;
    // The clock is tokio's paused one: it moves to the deadline at once.
    let asked = tokio::time::Instant::now();
    assert!(!hasher.has_room().await);
    assert_eq!(asked.elapsed(), ADMISSION_WAIT);
    let asked = tokio::time::Instant::now();
    assert!(matches!(
        hasher.run(|| ()).await,
        Err(HashError::Overloaded)
    ));
    assert_eq!(asked.elapsed(), ADMISSION_WAIT);
    gate.wait();
    held.await.unwrap().unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 7);
    assert_eq!(hasher.queue_depth(), 0);
    assert!(hasher.run(|| ()).await.is_ok());
}

#[tokio::test]
async fn a_caller_waiting_for_room_is_woken_when_a_worker_frees() {
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 1).unwrap();
    let (gate, held) = occupy_the_only_worker(&hasher).await;
    let waiting = fill_the_queue(&hasher).await;
    assert!(hasher.is_saturated());
    let asking = {
        let hasher = hasher.clone();
        // A deadline far off: the answer comes from the worker's signal, not the timer.
        tokio::spawn(async move {
            hasher
                .room_by(tokio::time::Instant::now() + std::time::Duration::from_secs(600))
                .await
        })
    };
    // Polled once: it is waiting (the queue is full) when the worker frees.
    tokio::task::yield_now().await;
    assert!(!asking.is_finished());
    gate.wait();
    let woken = tokio::time::timeout(std::time::Duration::from_secs(10), asking).await;
    assert!(
        woken
            .expect("woken by the worker, long before its deadline")
            .unwrap(),
        "room came when the worker finished"
    );
    held.await.unwrap().unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 7);
}

#[tokio::test]
async fn saturation_means_every_worker_busy_and_the_queue_full() {
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 1).unwrap();
    assert!(!hasher.is_saturated());
    let (gate, held) = occupy_the_only_worker(&hasher).await;
    assert!(!hasher.is_saturated(), "the queue still has room");
    let waiting = {
        let hasher = hasher.clone();
        tokio::spawn(async move { hasher.run(|| ()).await })
    };
    while hasher.queue_depth() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(hasher.is_saturated());
    gate.wait();
    held.await.unwrap().unwrap();
    waiting.await.unwrap().unwrap();
    while hasher.is_saturated() {
        tokio::task::yield_now().await;
    }
}

#[test]
fn a_cost_below_the_owasp_floor_is_raised_to_it_and_one_on_it_kept() {
    for (m, t) in OWASP_FLOOR {
        assert_eq!(at_least_owasp(m, t), (m, t), "on the floor: kept");
        assert_eq!(at_least_owasp(m, t + 1), (m, t + 1), "above it: kept");
        if t > 1 {
            assert_eq!(at_least_owasp(m, t - 1), (m, t), "one pass short: raised");
        }
    }
    assert_eq!(at_least_owasp(1024, 1), (7_168, 5));
    assert_eq!(at_least_owasp(19_455, 2), (19_455, 3));
    assert_eq!(at_least_owasp(65_536, 1), (65_536, 1));
    assert_eq!(
        at_least_owasp(0, 0),
        (DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS)
    );
}

#[tokio::test]
async fn a_panicking_job_fails_alone_and_the_worker_lives_on() {
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 1).unwrap();
    let failed = hasher.run(|| -> () { panic!("boom") }).await;
    assert!(matches!(failed, Err(HashError::Failed(_))));
    assert_eq!(hasher.run(|| 5).await.unwrap(), 5);
}

#[tokio::test]
async fn hashes_from_the_argon2_crate_verify_and_a_changed_byte_does_not() {
    use ::argon2::password_hash::PasswordHasher as _;
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 1).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let reference = Argon2::default()
        .hash_password(b"Tr1cky-Lantern-Owl", &salt)
        .unwrap()
        .to_string();
    assert!(hasher
        .verify(
            Password::new("Tr1cky-Lantern-Owl".into()),
            Some(reference.clone())
        )
        .await
        .unwrap());
    let mut tampered = reference.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(!hasher
        .verify(Password::new("Tr1cky-Lantern-Owl".into()), Some(tampered))
        .await
        .unwrap());
}

#[tokio::test]
async fn a_hash_at_the_configured_cost_is_kept_and_one_at_another_cost_upgraded() {
    let current = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 4).unwrap();
    let stored = current.hash(Password::new(PW.into())).await.unwrap();
    let kept = current
        .verify_and_upgrade(Password::new(PW.into()), Some(stored.clone()))
        .await
        .unwrap();
    assert!(kept.matched);
    assert!(kept.upgraded.is_none());

    let raised = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS + 1, 1, 4).unwrap();
    let upgraded = raised
        .verify_and_upgrade(Password::new(PW.into()), Some(stored))
        .await
        .unwrap();
    assert!(upgraded.matched);
    let new_hash = upgraded.upgraded.expect("rehashed at the raised cost");
    assert!(
        new_hash.starts_with("$argon2id$v=19$m=7168,t=6,p=1$"),
        "{new_hash}"
    );
    assert!(raised
        .verify(Password::new(PW.into()), Some(new_hash))
        .await
        .unwrap());
}

#[tokio::test]
async fn a_django_hash_verifies_and_is_upgraded_to_argon2id() {
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 4).unwrap();
    // Django 5.2's pbkdf2_sha256 of PW, at 1000 iterations.
    let django =
        "pbkdf2_sha256$1000$HqBXTtbp7Qrit6N65bnKBP$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=";
    let v = hasher
        .verify_and_upgrade(Password::new(PW.into()), Some(django.into()))
        .await
        .unwrap();
    assert!(v.matched);
    let shown = format!("{v:?}");
    assert!(!shown.contains("argon2"), "{shown}");
    let new_hash = v.upgraded.expect("a Django hash is always upgraded");
    assert!(
        new_hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
        "{new_hash}"
    );

    let wrong = hasher
        .verify_and_upgrade(Password::new("wrong".into()), Some(django.into()))
        .await
        .unwrap();
    assert!(!wrong.matched && wrong.upgraded.is_none());
    let unknown = hasher
        .verify_and_upgrade(Password::new(PW.into()), None)
        .await
        .unwrap();
    assert!(!unknown.matched && unknown.upgraded.is_none());
}

const PW: &str = "Tr1cky-Lantern-Owl";

#[tokio::test]
async fn an_absurd_memory_cost_in_a_stored_hash_is_refused_not_attempted() {
    let hasher = Hasher::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1, 1).unwrap();
    let hostile = "$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(!hasher
        .verify(Password::new("x".into()), Some(hostile.into()))
        .await
        .unwrap());
}
