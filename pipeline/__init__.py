"""auditveil: pseudonymise key-management audit logs with an HSM-held key, for analysis in the EU."""

__version__ = "0.1.0"
