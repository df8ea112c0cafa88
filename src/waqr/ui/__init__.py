"""The Streamlit UI (``waqr ui``): link, watch and repair the session from a browser. It talks
only to the bridge, never to the bot."""
