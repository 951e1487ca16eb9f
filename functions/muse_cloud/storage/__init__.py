"""DynamoDB and S3 storage behind narrow, typed interfaces."""
