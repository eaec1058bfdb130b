"""The Streamlit search page (`indexer ui`): app.py is the page, cli.py the command."""
