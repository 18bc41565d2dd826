//! Git push webhooks (GitHub, GitLab, Gitea, generic HMAC): verified payload -> which sources to sync now.
