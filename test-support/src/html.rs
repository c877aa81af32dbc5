//! Reading the control plane's server-rendered pages as a browser submits them: the hidden
//! fields of the login and logout forms.

/// The hidden fields of an HTML page's form, unescaped, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |text: &str| {
        text.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.strip_prefix("name=\"")?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hidden_fields;

    #[test]
    fn hidden_fields_are_read_in_order_and_unescaped() {
        let html = r#"<form><input type="hidden" name="state" value="a&amp;b&quot;c"><input type="text" name="username"><input type="hidden" name="csrf" value="t"></form>"#;
        assert_eq!(
            hidden_fields(html),
            vec![
                ("state".to_owned(), "a&b\"c".to_owned()),
                ("csrf".to_owned(), "t".to_owned())
            ]
        );
    }
}
