"""The openvocab web demo (Gradio): ``openvocab demo`` runs :func:`app.main`; :func:`app.build_app` makes the page."""
