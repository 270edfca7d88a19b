//! The run page's data, made on the server: a run in words, with its documents ready to show
//! (markdown rendered to HTML here, a request's keys read from its content), for the
//! [`RunLive`](crate::ui::requests::RunLive) island.

use crate::model::{
    CreatedBy, DocumentKind, Moment, RequestedKey, RunPageData, RunPart, RunStatus, SecretRequest, WorkflowRun,
};
use crate::ui::markdown::to_safe_html;

/// The run page's data: the run in words and its documents ready to show (markdown rendered
/// here, on the server; raw HTML in it escaped).
pub fn run_page(run: WorkflowRun) -> RunPageData {
    let waiting = run.status == RunStatus::Waiting;
    let last_request = run.documents.iter().rposition(|d| d.kind == DocumentKind::SecretRequestDocument);
    let documents = run
        .documents
        .iter()
        .enumerate()
        .map(|(i, doc)| match doc.kind {
            DocumentKind::SecretRequestDocument => {
                RunPart::Request { request: request_of(&doc.content), open: waiting && Some(i) == last_request }
            }
            DocumentKind::MarkdownDocument => {
                RunPart::Markdown { html: to_safe_html(doc.content["markdown"].as_str().unwrap_or_default()) }
            }
            DocumentKind::TaskResult => {
                RunPart::Result { message: doc.content["message"].as_str().unwrap_or_default().to_string() }
            }
        })
        .collect();
    RunPageData {
        workspace_id: run.workspace_id,
        run_id: run.id,
        title: title(&run.workflow).to_string(),
        status: run.status,
        requested_by: creator_label(&run.created_by),
        requested_at: run.created_at.into(),
        expires: run.expires_at.map(Moment::from),
        expired: run.status == RunStatus::Failed && run.result.as_ref().is_some_and(|r| r["expired"] == true),
        documents,
    }
}

/// The request a SecretRequestDocument holds. Its content was checked when the request came
/// in; should a stored one not read as a request, its keys alone are shown.
fn request_of(content: &serde_json::Value) -> SecretRequest {
    serde_json::from_value(content.clone()).unwrap_or_else(|_| SecretRequest {
        reason: None,
        variables: content["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["key"].as_str().map(RequestedKey::new))
            .collect(),
    })
}

/// Who started a run, in words.
fn creator_label(created_by: &CreatedBy) -> String {
    match created_by {
        CreatedBy::User { name } => name.clone(),
        CreatedBy::Token { name: Some(name) } => format!("API token \u{201c}{name}\u{201d}"),
        CreatedBy::Token { name: None } => "an API token that no longer exists".into(),
        CreatedBy::Cli => "the command line".into(),
        CreatedBy::System => "the server".into(),
    }
}

fn title(workflow: &str) -> &'static str {
    match workflow {
        "secrets_example" => "Secrets Update Example",
        _ => "Secret request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use uuid::Uuid;

    fn document(kind: DocumentKind, content: serde_json::Value) -> crate::model::RunDocument {
        crate::model::RunDocument { id: Uuid::new_v4(), kind, content, created_at: Utc::now() }
    }

    fn run(status: RunStatus, documents: Vec<crate::model::RunDocument>) -> WorkflowRun {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 18, 30, 59).unwrap();
        WorkflowRun {
            id: Uuid::new_v4(),
            workspace_id: Uuid::new_v4(),
            workflow: "secrets_request".into(),
            place: "requesting_secrets".into(),
            status,
            args: json!({}),
            result: (status == RunStatus::Failed).then(|| json!({"expired": true})),
            parent_id: None,
            callback: None,
            expires_at: Some(at),
            created_at: at,
            created_by: CreatedBy::Token { name: Some("deploy-bot".into()) },
            updated_at: at,
            transitions: vec![],
            documents,
        }
    }

    #[test]
    fn only_the_waiting_runs_last_request_is_a_form_and_times_are_formatted_here() {
        let asked = |key: &str| document(DocumentKind::SecretRequestDocument, json!({"variables": [{"key": key}]}));
        let page = run_page(run(RunStatus::Waiting, vec![asked("FIRST"), asked("SECOND")]));

        let open: Vec<bool> =
            page.documents.iter().map(|part| matches!(part, RunPart::Request { open: true, .. })).collect();
        assert_eq!(open, [false, true]);
        assert_eq!(page.requested_by, "API token \u{201c}deploy-bot\u{201d}");
        assert_eq!(
            page.requested_at,
            Moment { iso: "2026-12-05T18:30:59+00:00".into(), text: "2026-12-05 18:30 UTC".into() }
        );
        assert!(!page.expired);
    }

    #[test]
    fn markdown_is_rendered_escaped_and_an_expired_run_says_so() {
        let markdown = document(DocumentKind::MarkdownDocument, json!({"markdown": "**done** <script>x</script>"}));
        let page = run_page(run(RunStatus::Failed, vec![markdown]));

        let RunPart::Markdown { html } = &page.documents[0] else { panic!("{:?}", page.documents) };
        assert!(html.contains("<strong>done</strong>") && !html.contains("<script>"), "{html}");
        assert!(page.expired);
        assert_eq!(page.title, "Secret request");
    }
}
