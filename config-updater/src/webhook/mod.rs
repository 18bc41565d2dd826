//! Registry webhooks (distribution notifications, Docker Hub, Harbor, Quay, GitHub packages, generic HMAC): verified payload -> which repositories to scan now.
