use reqwest::header::{HeaderMap, HeaderValue, LINK};

use crate::scan::http_pages::{Challenge, has_next_link, parse_challenge, parse_tag_list};

#[test]
fn challenges_parse() {
    assert_eq!(
        parse_challenge(r#"Basic realm="Registry Realm""#),
        Some(Challenge::Basic)
    );
    assert_eq!(
        parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
        ),
        Some(Challenge::Bearer {
            realm: "https://auth.docker.io/token".into(),
            service: Some("registry.docker.io".into()),
            scope: Some("repository:library/nginx:pull".into()),
        })
    );
    // Commas inside quotes, spaces after commas, unquoted values, escapes, any case.
    assert_eq!(
        parse_challenge(
            r#"bearer realm="https://ghcr.io/token", scope="repository:a/b:pull,push",service=ghcr.io, x="a\"b""#
        ),
        Some(Challenge::Bearer {
            realm: "https://ghcr.io/token".into(),
            service: Some("ghcr.io".into()),
            scope: Some("repository:a/b:pull,push".into()),
        })
    );
    assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
    assert_eq!(parse_challenge("Negotiate abc"), None);
    assert_eq!(parse_challenge(""), None);
}

fn links(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for v in values {
        headers.append(LINK, HeaderValue::from_str(v).unwrap());
    }
    headers
}

#[test]
fn link_headers_announce_the_next_page() {
    assert!(has_next_link(&links(&[
        r#"</v2/app/tags/list?last=b&n=2>; rel="next""#
    ])));
    assert!(has_next_link(&links(&[
        r#"<https://ghcr.io/v2/a/tags/list?last=x&n=1000>; rel=next"#
    ])));
    assert!(has_next_link(&links(&[
        r#"</x>; rel="prev", </y>; rel="next""#
    ])));
    assert!(!has_next_link(&links(&[r#"</x>; rel="prev""#])));
    assert!(!has_next_link(&links(&[])));
}

#[test]
fn tag_list_bodies_tolerate_null_and_count_non_strings() {
    assert_eq!(
        parse_tag_list(br#"{"name":"a","tags":["1","2"]}"#).unwrap(),
        (vec!["1".into(), "2".into()], 0)
    );
    assert_eq!(
        parse_tag_list(br#"{"name":"a","tags":null}"#).unwrap(),
        (vec![], 0)
    );
    assert_eq!(parse_tag_list(br#"{"name":"a"}"#).unwrap(), (vec![], 0));
    assert_eq!(
        parse_tag_list(br#"{"name":"a","tags":["1",42,null,{"x":1},"bad tag"]}"#).unwrap(),
        (vec!["1".into(), "bad tag".into()], 3)
    );
    let err = parse_tag_list(b"<html>busy</html>").unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
}

#[test]
fn error_bodies_are_summed_up_on_one_line() {
    use crate::scan::http_pages::error_summary;
    // nginx in front of a registry whose backend is down.
    let nginx = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.26.3</center>\r\n</body>\r\n</html>\r\n";
    assert_eq!(error_summary(nginx), "502 Bad Gateway");
    // The distribution spec's error body.
    let json = br#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable","detail":null},{"message":"try later"}]}"#;
    assert_eq!(
        error_summary(json),
        "UNAVAILABLE: service unavailable; try later"
    );
    assert_eq!(
        error_summary(b"  upstream\n  timed out \n"),
        "upstream timed out"
    );
    assert_eq!(error_summary(&[b'x'; 500]).len(), 200);
    assert_eq!(error_summary(b""), "");
    // JSON without the errors array is text like any other.
    assert_eq!(error_summary(br#"{"oops": 1}"#), r#"{"oops": 1}"#);
}
