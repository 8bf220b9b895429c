"""Intent handlers: each turns a routed request into a reply, calling services where needed."""
