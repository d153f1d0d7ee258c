"""CelesteOS Desktop: OneDrive for Business / SharePoint → Supabase, over a satellite link."""

__version__ = "0.1.0"
