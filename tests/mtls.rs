//! mTLS on the TCP listener: a client with a certificate from the
//! configured CA is served and named in the audit record by its subject and
//! SPIFFE ID; a client without one is refused during the handshake.
//! Certificates are made by the test with OpenSSL.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Issuer, good_claims, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    audit::Record,
    pb::{DecryptRequest, decryptor_client::DecryptorClient},
    server::BoundServer,
    service::{AuditFailure, Limits},
};
use openssl::{
    asn1::Asn1Time,
    bn::BigNum,
    ec::{EcGroup, EcKey},
    hash::MessageDigest,
    nid::Nid,
    pkey::{PKey, Private},
    x509::{
        X509, X509NameBuilder,
        extension::{BasicConstraints, SubjectAlternativeName},
    },
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

const SPIFFE_ID: &str = "spiffe://example.test/ns/shop/sa/orders";

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
}

/// Makes a certificate for `cn`, signed by `issuer` (or self-signed).
fn certificate(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    san: Option<SubjectAlternativeName>,
    ca: bool,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("O", "jwed tests").expect("O");
    name.append_entry_by_text("CN", cn).expect("CN");
    let name = name.build();

    let mut builder = X509::builder().expect("builder");
    builder.set_version(2).expect("version");
    let serial = BigNum::from_u32(rand_u32())
        .expect("serial")
        .to_asn1_integer()
        .expect("serial");
    builder.set_serial_number(&serial).expect("serial");
    builder.set_subject_name(&name).expect("subject");
    builder
        .set_issuer_name(issuer.map_or(&name, |(cert, _)| cert.subject_name()))
        .expect("issuer");
    builder.set_pubkey(key).expect("pubkey");
    builder
        .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    builder
        .set_not_after(&Asn1Time::days_from_now(2).expect("time"))
        .expect("not after");
    if ca {
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().expect("ca"))
            .expect("extension");
    }
    if let Some(san) = san {
        let context = builder.x509v3_context(issuer.map(|(cert, _)| &**cert), None);
        let extension = san.build(&context).expect("san");
        builder.append_extension(extension).expect("extension");
    }
    builder
        .sign(issuer.map_or(key, |(_, key)| key), MessageDigest::sha256())
        .expect("sign");
    builder.build()
}

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    openssl::rand::rand_bytes(&mut bytes).expect("random");
    u32::from_le_bytes(bytes) >> 1
}

fn pem(cert: &X509) -> Vec<u8> {
    cert.to_pem().expect("pem")
}

fn key_pem(key: &PKey<Private>) -> Vec<u8> {
    key.private_key_to_pem_pkcs8().expect("pem")
}

#[tokio::test]
async fn mtls_client_is_served_and_named_in_the_audit_record() {
    let ca_key = new_key();
    let ca = certificate("jwed test CA", &ca_key, None, None, true);
    let server_key = new_key();
    let mut server_san = SubjectAlternativeName::new();
    server_san.dns("localhost").ip("127.0.0.1");
    let server_cert = certificate("jwed", &server_key, Some((&ca, &ca_key)), Some(server_san), false);
    let client_key = new_key();
    let mut client_san = SubjectAlternativeName::new();
    client_san.uri(SPIFFE_ID);
    let client_cert = certificate("orders", &client_key, Some((&ca, &ca_key)), Some(client_san), false);

    let files = write_keys(&[(KeyAlg::EcdhEs, "enc", "P-256")], &[(SigAlg::ES256, "sig")]);
    let token = Issuer::new(&files, "sig", "enc").mint(&good_claims(), ContentEnc::A256Gcm);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (auditing, audit_log) = common::auditing(dir.path(), AuditFailure::FailClosed);
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(pem(&server_cert), key_pem(&server_key)))
        .client_ca_root(Certificate::from_pem(pem(&ca)));
    let bound = BoundServer::bind(
        None,
        Some("127.0.0.1:0".parse().expect("address")),
        Arc::new(common::decrypter(&files, test_policy())),
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind")
    .with_tls(tls);
    let address = bound.tcp_address().expect("address");
    tokio::spawn(bound.serve(std::future::pending()));

    let endpoint = Endpoint::from_shared(format!("https://{address}")).expect("endpoint");
    let with_identity = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(&ca)))
        .domain_name("localhost")
        .identity(Identity::from_pem(pem(&client_cert), key_pem(&client_key)));
    let channel = endpoint
        .clone()
        .tls_config(with_identity)
        .expect("tls")
        .connect()
        .await
        .expect("mTLS connect");
    let response = DecryptorClient::new(channel)
        .decrypt(DecryptRequest {
            token: token.clone(),
            ..DecryptRequest::default()
        })
        .await
        .expect("served");
    assert_eq!(response.into_inner().key_id, "enc");

    let text = std::fs::read_to_string(&audit_log).expect("audit log");
    let record: Record = serde_json::from_str(text.lines().next().expect("one record")).expect("record");
    assert_eq!(record.caller.cert_uris, vec![SPIFFE_ID.to_owned()]);
    assert_eq!(record.caller.cert_subject.as_deref(), Some("O=jwed tests,CN=orders"));
    assert!(
        record
            .caller
            .address
            .as_deref()
            .is_some_and(|peer| peer.starts_with("127.0.0.1:"))
    );

    // Without a client certificate the handshake, or the first call, fails.
    let without_identity = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(&ca)))
        .domain_name("localhost");
    let refused = match endpoint.tls_config(without_identity).expect("tls").connect().await {
        Err(_) => true,
        Ok(channel) => DecryptorClient::new(channel)
            .decrypt(DecryptRequest {
                token,
                ..DecryptRequest::default()
            })
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    assert_eq!(
        std::fs::read_to_string(&audit_log).expect("audit log").lines().count(),
        1,
        "the refused client never reached the service"
    );
}
