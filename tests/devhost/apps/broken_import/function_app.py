import azure.functions as func
import no_such_module_here  # noqa: F401

app = func.FunctionApp()
