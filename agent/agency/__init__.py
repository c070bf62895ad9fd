"""The receiving side: what an agency or a control room runs to take in a site's alerts."""
