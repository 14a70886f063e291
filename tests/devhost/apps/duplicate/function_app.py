import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="x")
def same(x):
    return x


@app.function_name("same")
@app.activity_trigger(input_name="y")
def other(y):
    return y
