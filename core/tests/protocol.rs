//! Tokens, receipts and wire frames: the checks a worker relies on. Runs natively and as wasm32.

#![allow(clippy::cast_possible_truncation)]

use disktro_core::keys::Keypair;
use disktro_core::token::{Operation, Receipt, Scope, Token};
use disktro_core::wire::{Body, ErrorCode, Frame, MAX_FRAME_LEN, MAX_SHARD_LEN};
use disktro_core::{Error, FileId, Serial, ShardId};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

const NOW: u64 = 1_800_000_000;

fn server() -> Keypair {
    Keypair::from_secret_bytes(&[1; 32])
}
fn worker() -> Keypair {
    Keypair::from_secret_bytes(&[2; 32])
}

fn token(operation: Operation) -> Token {
    Token {
        operation,
        issuer: server().public(),
        worker: worker().public().node_id(),
        scope: Scope::File(FileId([3; 16])),
        serial: Serial::random(),
        expires_at: NOW + 60,
        byte_budget: 1 << 20,
        order_key: None,
        shards: vec![ShardId::of(b"one"), ShardId::of(b"two")],
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn tokens_are_checked_for_issuer_signature_worker_operation_and_expiry() {
    let (s, w) = (server().public(), worker().public().node_id());
    let bytes = token(Operation::Get).sign(&server()).unwrap();
    let t = Token::verify(&bytes, &s, &w, Operation::Get, NOW).unwrap();
    assert!(t.covers(&ShardId::of(b"one")) && !t.covers(&ShardId::of(b"three")));
    // Tried, each with what must hold:
    // expired (at and after expiry) → Expired
    assert_eq!(
        Token::verify(&bytes, &s, &w, Operation::Get, NOW + 60),
        Err(Error::Expired)
    );
    // another worker → WrongWorker
    assert_eq!(
        Token::verify(&bytes, &s, &disktro_core::NodeId([7; 32]), Operation::Get, NOW),
        Err(Error::WrongWorker)
    );
    // another operation → WrongOperation
    assert_eq!(
        Token::verify(&bytes, &s, &w, Operation::Put, NOW),
        Err(Error::WrongOperation)
    );
    // another server's token → WrongIssuer
    let mut other = token(Operation::Get);
    other.issuer = Keypair::from_secret_bytes(&[9; 32]).public();
    let other = other.sign(&Keypair::from_secret_bytes(&[9; 32])).unwrap();
    assert_eq!(
        Token::verify(&other, &s, &w, Operation::Get, NOW),
        Err(Error::WrongIssuer)
    );
    // forged: claims our server as issuer, signed by someone else → BadSignature
    let mut forged = token(Operation::Get).sign(&server()).unwrap();
    let sig_at = forged.len() - 64;
    let fake = Keypair::from_secret_bytes(&[9; 32]).sign("token", &forged[..sig_at]);
    forged[sig_at..].copy_from_slice(&fake);
    assert_eq!(
        Token::verify(&forged, &s, &w, Operation::Get, NOW),
        Err(Error::BadSignature)
    );
    // any byte altered (extending expiry, budget, shard list...) → an error
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x04;
        assert!(Token::verify(&bad, &s, &w, Operation::Get, NOW).is_err(), "byte {i}");
    }
    // signing a token for a server key that is not the issuer → refused
    assert_eq!(token(Operation::Get).sign(&worker()), Err(Error::WrongIssuer));
    // a get token listing no shards → refused (it would cover nothing, or everything)
    let mut empty = token(Operation::Get);
    empty.shards.clear();
    assert!(matches!(empty.sign(&server()), Err(Error::NonCanonical(_))));
    // a put token listing none covers any shard of its upload, within its budget
    let mut put = token(Operation::Put);
    put.shards.clear();
    put.scope = Scope::Upload([5; 16]);
    let put = Token::verify(&put.sign(&server()).unwrap(), &s, &w, Operation::Put, NOW).unwrap();
    assert!(put.covers(&ShardId::of(b"anything")));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn tokens_signed_together_each_verify_alone_and_none_can_be_moved_or_changed() {
    let (s, w) = (server().public(), worker().public().node_id());
    let reader = Keypair::from_secret_bytes(&[4; 32]).public();
    for count in [1, 2, 3, 10, 33] {
        let tokens: Vec<Token> = (0..count)
            .map(|_| Token {
                order_key: Some(reader),
                ..token(Operation::Get)
            })
            .collect();
        let signed = Token::sign_all(tokens.clone(), &server()).unwrap();
        assert_eq!(signed.len(), count);
        for (bytes, original) in signed.iter().zip(&tokens) {
            let t = Token::verify(bytes, &s, &w, Operation::Get, NOW).unwrap();
            assert_eq!(t.serial, original.serial);
            assert_eq!(t.order_key, Some(reader));
        }
        // Tried, each with what must hold (every one is refused):
        // a body byte changed (the budget) → its leaf no longer leads to the signed root
        let budget_at = 4 + 1 + 1 + 32 + 32 + 1 + 16 + 16 + 8;
        let mut raised = signed[count - 1].clone();
        raised[budget_at] ^= 1;
        assert_eq!(Token::decode(&raised), Err(Error::BadSignature));
        if count > 1 {
            // a sibling changed, or the leaf index claimed another place → BadSignature
            let proof_at = signed[0].len() - 64 - 32;
            let mut bent = signed[0].clone();
            bent[proof_at] ^= 1;
            assert_eq!(Token::decode(&bent), Err(Error::BadSignature));
            let leaf_at = signed[0].len() - 64 - 32 * (count.next_power_of_two().trailing_zeros() as usize) - 3;
            let mut moved = signed[0].clone();
            moved[leaf_at + 1] ^= 1;
            assert_eq!(Token::decode(&moved), Err(Error::BadSignature));
            // another batch's signature (one serial differs) on this batch's token → BadSignature
            let mut renumbered = tokens.clone();
            renumbered[0].serial = Serial::random();
            let other = Token::sign_all(renumbered, &server()).unwrap();
            let mut swapped = signed[1].clone();
            let len = swapped.len();
            swapped[len - 64..].copy_from_slice(&other[1][len - 64..]);
            assert_eq!(Token::decode(&swapped), Err(Error::BadSignature));
        }
    }
    // Only get tokens name an order key.
    let put = Token {
        order_key: Some(reader),
        ..token(Operation::Put)
    };
    assert!(put.sign(&server()).is_err());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn receipts_verify_only_for_their_worker() {
    let r = Receipt {
        worker: worker().public().node_id(),
        shard: ShardId::of(b"s"),
        size: 100,
        serial: Serial([1; 16]),
    };
    let bytes = r.sign(&worker()).unwrap();
    assert_eq!(Receipt::verify(&bytes, &worker().public()).unwrap(), r);
    // Tried: verifying with another worker's key, signing for another node, flipping any byte.
    // Must hold: an error every time.
    assert_eq!(Receipt::verify(&bytes, &server().public()), Err(Error::WrongWorker));
    assert_eq!(r.sign(&server()), Err(Error::WrongWorker));
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        assert!(Receipt::verify(&bad, &worker().public()).is_err(), "byte {i}");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn malformed_frames_get_clear_errors() {
    let put = Frame {
        request_id: 1,
        body: Body::Put {
            token: vec![1; 10],
            shard: ShardId::of(b"d"),
            data: b"d".to_vec().into(),
        },
    };
    let bytes = put.encode().unwrap();
    // Decoded from a shared message (as the worker does), the put's data is that message's
    // last byte, not a copy.
    let message = bytes::Bytes::from(bytes.clone());
    match Frame::decode_shared(&message).unwrap().body {
        Body::Put { data, .. } => assert!(std::ptr::eq(data.as_ptr(), &message[message.len() - 1])),
        other => panic!("decoded {other:?}"),
    }
    // A put framed from a borrowed shard, numbered afterwards, is the same frame.
    let mut framed = disktro_core::wire::encode_put(&[1; 10], &ShardId::of(b"d"), b"d").unwrap();
    disktro_core::wire::number_frame(&mut framed, 1).unwrap();
    assert_eq!(framed, bytes);
    // So is its head followed by the data (how the browser frames a shard into the buffer it
    // sends); a head for more data than a shard may hold is refused.
    let mut head = disktro_core::wire::put_head(&[1; 10], &ShardId::of(b"d"), 1).unwrap();
    disktro_core::wire::number_frame(&mut head, 1).unwrap();
    assert_eq!([head, b"d".to_vec()].concat(), bytes);
    assert!(disktro_core::wire::put_head(&[1; 10], &ShardId::of(b"d"), MAX_SHARD_LEN + 1).is_err());
    // A numbered put framed again under another token is that token's put of the same shard,
    // unnumbered; a frame that is not a whole put is refused.
    let again = disktro_core::wire::reframe_put(&framed, &[2; 12]).unwrap();
    assert_eq!(
        Frame::decode(&again).unwrap(),
        Frame {
            request_id: 0,
            body: Body::Put {
                token: vec![2; 12],
                shard: ShardId::of(b"d"),
                data: b"d".to_vec().into(),
            },
        }
    );
    assert!(disktro_core::wire::reframe_put(&framed[..framed.len() - 1], &[2; 12]).is_err());
    assert!(
        disktro_core::wire::reframe_put(
            &Frame {
                request_id: 0,
                body: Body::Welcome
            }
            .encode()
            .unwrap(),
            &[2]
        )
        .is_err()
    );
    // Tried: numbering bytes shorter than a frame header. Must hold: refused, nothing panics.
    assert!(disktro_core::wire::number_frame(&mut [1, 2, 3], 1).is_err());
    assert!(disktro_core::wire::encode_put(&[1; 10], &ShardId::of(b"d"), &vec![0; MAX_SHARD_LEN + 1]).is_err());
    // Tried: unknown version → UnsupportedVersion.
    let mut v = bytes.clone();
    v[0] = 9;
    assert_eq!(
        Frame::decode(&v),
        Err(Error::UnsupportedVersion {
            what: "frame",
            found: 9
        })
    );
    // unknown kind → NonCanonical.
    let mut k = bytes.clone();
    k[1] = 77;
    assert!(matches!(Frame::decode(&k), Err(Error::NonCanonical(_))));
    // an over-limit frame → TooLarge before parsing.
    assert!(matches!(
        Frame::decode(&vec![1; MAX_FRAME_LEN + 1]),
        Err(Error::TooLarge { .. })
    ));
    // a declared shard length over the limit → TooLarge, without allocating it.
    let mut huge = vec![1, 17, 0, 0, 0, 1];
    huge.extend_from_slice(&[0; 32]);
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Frame::decode(&huge),
        Err(Error::TooLarge { what: "shard", .. })
    ));
    // a declared length longer than the frame → Truncated.
    let mut short = vec![1, 17, 0, 0, 0, 1];
    short.extend_from_slice(&[0; 32]);
    short.extend_from_slice(&100u32.to_be_bytes());
    short.extend_from_slice(&[0; 10]);
    assert_eq!(Frame::decode(&short), Err(Error::Truncated("frame")));
    // an unknown error code and a non-UTF-8 message → rejected.
    assert!(Frame::decode(&[1, 31, 0, 0, 0, 1, 0, 99, 0, 0]).is_err());
    assert!(Frame::decode(&[1, 31, 0, 0, 0, 1, 0, 1, 0, 1, 0xff]).is_err());
    // encoding refuses what decoding would refuse.
    let big = Frame {
        request_id: 1,
        body: Body::ShardData {
            shard: ShardId::of(b""),
            data: vec![0; MAX_SHARD_LEN + 1],
        },
    };
    assert!(matches!(big.encode(), Err(Error::TooLarge { .. })));
    assert_eq!(ErrorCode::for_error(&Error::Expired), ErrorCode::TokenExpired);
}
