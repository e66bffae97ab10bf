//! Sample data for the demo: client workspaces with members, campaigns, accounts, tags, and a few
//! over-privileged keys for the key-hygiene report to find.

use chrono::{Duration, Utc};

use crate::model::DemoWorkspace;
use crate::state::Shared;

const CLIENTS: &[&str] = &[
    "Acme Roofing",
    "Birch Dental",
    "Cobalt Logistics",
    "Dune Coffee",
    "Elm Street Law",
    "Fjord Travel",
    "Granite Fitness",
    "Harbor Insurance",
];

/// Creates `n` sample workspaces and returns each one's id and an `all:all` key.
pub(crate) fn seed(shared: &Shared, n: usize) -> Vec<DemoWorkspace> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let base = CLIENTS[i % CLIENTS.len()];
        let name = if n <= CLIENTS.len() {
            base.to_owned()
        } else {
            format!("{base} {:03}", i + 1)
        };
        let domain = format!(
            "{}{}.example",
            base.to_lowercase().replace(' ', "-"),
            if n <= CLIENTS.len() {
                String::new()
            } else {
                format!("-{}", i + 1)
            }
        );
        let ws = shared.create_workspace(&name);
        let seeded = (|| -> crate::error::Result<DemoWorkspace> {
            shared.seed_member(&ws, &format!("maria@{domain}"), "admin", true)?;
            shared.seed_member(&ws, &format!("sam@{domain}"), "editor", true)?;
            shared.seed_member(&ws, &format!("intern@{domain}"), "view", i % 3 != 0)?;
            if i % 2 == 0 {
                shared.seed_member(&ws, "contractor@agency-old.example", "admin", true)?;
            }
            let tag = shared.seed_tag(&ws, "Q3 push")?;
            for (j, (label, status)) in [
                ("Spring outreach", 1),
                ("Re-engagement", 2),
                ("Partners", 0),
            ]
            .into_iter()
            .enumerate()
            {
                let c = shared.seed_campaign(&ws, label, status)?;
                if j == 0 {
                    shared.seed_tag_mapping(&ws, &tag, 2, &c)?;
                }
            }
            for (j, local) in ["hello", "sales", "team"].into_iter().enumerate() {
                let email = format!("{local}@mail.{domain}");
                shared.seed_account(&ws, &email, if j == 2 { 2 } else { 1 })?;
                if j == 0 {
                    shared.seed_tag_mapping(&ws, &tag, 1, &email)?;
                }
            }
            shared.seed_audit_log(&ws, 1, Utc::now() - Duration::days(2))?;
            // Over-privileged keys: what a hygiene report should flag.
            shared.create_key(&ws, "zapier (old)", &["all:all".into()])?;
            if i % 2 == 1 {
                shared.create_key(
                    &ws,
                    "freelancer export",
                    &["all:read".into(), "leads:all".into()],
                )?;
            }
            shared.create_key(
                &ws,
                "reporting",
                &["campaigns:read".into(), "accounts:read".into()],
            )?;
            let key = shared.create_key(&ws, "flotilla", &["all:all".into()])?;
            Ok(DemoWorkspace {
                workspace_id: ws.clone(),
                name: name.clone(),
                key_id: key.id,
                key: key.key,
            })
        })();
        // The workspace was just created, so seeding cannot fail.
        if let Ok(d) = seeded {
            out.push(d);
        }
    }
    out
}
