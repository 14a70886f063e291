import azure.functions as func


def on_upload(blob: func.InputStream, copy: func.Out[bytes], seen: func.Out[str]) -> None:
    content = blob.read()
    copy.set(content.upper())
    seen.set(f"{blob.name} {blob.length} {content.decode()}")
