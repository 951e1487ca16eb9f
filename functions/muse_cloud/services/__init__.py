"""Services: the operations handlers call, shared by the API and the unpack function."""
