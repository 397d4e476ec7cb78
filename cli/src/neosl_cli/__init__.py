"""The operator's command line (``neosl``) and the local function runner."""
