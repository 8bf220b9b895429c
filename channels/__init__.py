"""Channel adapters: each turns a provider's payload into a Request and a Reply into its own form."""
