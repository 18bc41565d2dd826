use std::time::Duration;

use super::*;

const SECRET: &str = "s3cr3t-t0ken-value";

fn forge(url: &str, spec: &ForgeSpec) -> Forge {
    let token = Token::new(format!("{SECRET}\n"));
    Forge::new(url, spec, Some(token), Duration::from_secs(2)).unwrap()
}

#[test]
fn a_forge_knows_its_provider_api_and_repository() {
    let f = forge("git@gitlab.com:group/sub/app.git", &ForgeSpec::default());
    assert_eq!(f.provider(), Provider::GitLab);
    assert_eq!(f.api_url(), "https://gitlab.com/api/v4");
    assert_eq!(f.repo().to_string(), "group/sub/app");
    let f = forge(
        "http://127.0.0.1:13000/sluice/demo-config.git",
        &ForgeSpec::default(),
    );
    assert_eq!(f.provider(), Provider::Gitea);
    assert_eq!(f.api_url(), "http://127.0.0.1:13000/api/v1");
}

#[test]
fn the_token_is_a_sensitive_header_and_never_printed() {
    for (url, header, value) in [
        (
            "https://git.example.com/o/r",
            "authorization",
            format!("token {SECRET}"),
        ),
        (
            "https://github.com/o/r",
            "authorization",
            format!("Bearer {SECRET}"),
        ),
        (
            "https://gitlab.com/o/r",
            "private-token",
            SECRET.to_string(),
        ),
    ] {
        let f = forge(url, &ForgeSpec::default());
        let (name, v) = f.auth.clone().unwrap();
        assert_eq!(name.as_str(), header);
        assert_eq!(v.to_str().unwrap(), value);
        assert!(v.is_sensitive());
        let debug = format!("{f:?}");
        assert!(!debug.contains(SECRET), "{debug}");
    }
}

#[test]
fn unusable_tokens_and_urls_are_config_errors() {
    let spec = ForgeSpec::default();
    let new = |url: &str, token: &str| {
        Forge::new(url, &spec, Some(Token::new(token)), Duration::from_secs(1))
    };
    let empty = new("https://git.example.com/o/r", " \n").unwrap_err();
    assert_eq!(empty.reason(), "ForgeConfig");
    let broken = new("https://git.example.com/o/r", "abc\ndef").unwrap_err();
    assert!(broken.to_string().contains("cannot carry"), "{broken}");
    assert!(!broken.to_string().contains("abc"), "{broken}");
    let no_repo = new("https://git.example.com/", "t").unwrap_err();
    assert_eq!(no_repo.metric_label(), "config");
    let no_token = Forge::new(
        "https://git.example.com/o/r",
        &spec,
        None,
        Duration::from_secs(1),
    );
    assert!(no_token.unwrap().auth.is_none());
    let bad_ca = forge("https://git.example.com/o/r", &spec).with_ca_pem(b"not a certificate");
    assert_eq!(bad_ca.unwrap_err().reason(), "ForgeConfig");
    let ca = include_bytes!("../git/testdata/ca.crt");
    assert!(
        forge("https://git.example.com/o/r", &spec)
            .with_ca_pem(ca)
            .is_ok()
    );
}

#[test]
fn listings_page_until_the_total_or_a_short_page() {
    assert!(more_pages(50, 50, 50, None));
    assert!(!more_pages(12, 50, 62, None));
    assert!(!more_pages(0, 50, 0, None));
    // Gitea's X-Total-Count decides even when the server pages smaller than asked.
    assert!(more_pages(30, 50, 30, Some(45)));
    assert!(!more_pages(15, 50, 45, Some(45)));
}

#[tokio::test]
async fn no_answer_is_unreachable_and_names_the_api() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let f = forge("http://127.0.0.1:1/team/config.git", &ForgeSpec::default());
    let err = f.pull_request(4).await.unwrap_err();
    assert_eq!(err.reason(), "ForgeUnreachable");
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(text.contains("http://127.0.0.1:1/api/v1"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}
